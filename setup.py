"Packaging for mnist37: everything is read from settings.ini (the nbdev 2 way)."
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

required = 'version description keywords author author_email license min_python status user repo lib_name'.split()
missing = [k for k in required if k not in cfg]
if missing: raise KeyError(f'settings.ini is missing {missing}')

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
lic = licenses[cfg['license']]
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable']
py_versions = '3.10 3.11 3.12 3.13'.split()
min_python = cfg['min_python']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
scripts = cfg.get('console_scripts', '').split()

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    license=lic[0],
    classifiers=[f'Development Status :: {statuses[int(cfg["status"])]}',
                 f'Intended Audience :: {cfg["audience"]}',
                 f'License :: {lic[1]}',
                 f'Natural Language :: {cfg["language"]}'] +
                [f'Programming Language :: Python :: {v}' for v in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['mnist37', 'mnist37.*']),
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'book': ['fastbook']},
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': scripts, 'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
    description=cfg['description'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    keywords=cfg['keywords'],
)
