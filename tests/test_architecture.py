"The package's shape: a small top level, two sub-packages, imports that run one way, in the notebooks' order."
import ast, json, re
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('checks', 'datasets')  # the sub-packages; everything else is the top level
# Top-level modules that serve instructors and the command line, not the lesson a student reads.
TOOLS = {'exercises', 'student', 'grade', 'recipes', 'cli'}

def notebook_of(nbs: Path) -> dict:
    "Each exported module ('data', 'checks.pixels', ...) and the notebook it comes from."
    found = {}
    for nb in sorted(nbs.glob('*.ipynb')):
        for cell in json.loads(nb.read_text())['cells']:
            if m := re.search(r'#\|\s*default_exp\s+(\S+)', ''.join(cell['source'])): found[m.group(1)] = nb.name
    return found

def layer(module: str) -> int:
    "0 the data sets, 1 the lesson, 2 the exercises' checks, 3 the tools: each imports only from layers below or earlier."
    if module.startswith('datasets.'): return 0
    if module.startswith('checks.'): return 2
    return 3 if module in TOOLS else 1

def package(module: str) -> str: return module.split('.')[0] if module.split('.')[0] in PACKAGES else ''

def imports(lib: Path) -> list:
    "Every (importer, imported module, names) inside the library, function-local imports included."
    found = []
    for f in sorted(lib.rglob('*.py')):
        if f.name.startswith('_'): continue
        mod = '.'.join(f.relative_to(lib).with_suffix('').parts)
        here = mod.split('.')[:-1]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):  # `import mnist37.checks.feedback`
                found += [(mod, a.name.split('.', 1)[1], []) for a in node.names if a.name.startswith(f'{lib.name}.')
                          and a.name.split('.', 1)[1] not in PACKAGES]
            if not isinstance(node, ast.ImportFrom): continue
            if node.level: base = here[:len(here) - node.level + 1] + ([node.module] if node.module else [])
            elif (node.module or '').split('.')[0] == lib.name: base = node.module.split('.')[1:]
            else: continue
            target, names = '.'.join(base), [a.name for a in node.names]
            if target in PACKAGES + ('',):  # `from .checks import pixels`, `from . import fast`: modules by name
                found += [(mod, f'{target}.{n}'.lstrip('.'), []) for n in names]
            else: found.append((mod, target, names))
    return found

def wrong_way(lib: Path, nbs: Path) -> list:
    "Imports that go up a layer, or to a later notebook of the same layer."
    nb = notebook_of(nbs)
    rank = lambda m: (layer(m), nb[m])
    return [f'{a} ({nb[a]}) imports {b} ({nb[b]})' for a, b, _ in imports(lib) if rank(b) >= rank(a)]

def private_across(lib: Path) -> list:
    return [f'{a} imports {n} from {b}' for a, b, names in imports(lib) for n in names
            if n.startswith('_') and package(a) != package(b)]

def test_the_top_level_is_small_and_the_packages_hold_the_rest():
    top = sorted(p.stem for p in (ROOT/'mnist37').glob('*.py') if not p.name.startswith('_'))
    assert len(top) <= 16, top
    for pkg in PACKAGES: assert (ROOT/'mnist37'/pkg/'__init__.py').exists() and len(list((ROOT/'mnist37'/pkg).glob('*.py'))) > 2
    # what a student imports keeps its path
    assert {'data', 'device', 'baseline', 'sgd', 'linear', 'optim', 'net', 'fast', 'learner', 'digits', 'exercises'} <= set(top)

def test_every_module_comes_from_a_notebook_and_every_import_is_in_the_library():
    nb = notebook_of(ROOT/'nbs')
    mods = {'.'.join(f.relative_to(ROOT/'mnist37').with_suffix('').parts) for f in (ROOT/'mnist37').rglob('*.py')
            if not f.name.startswith('_')}
    assert mods == set(nb)
    assert {b for _, b, _ in imports(ROOT/'mnist37')} <= mods

def test_imports_run_one_way_in_the_notebooks_order():
    assert wrong_way(ROOT/'mnist37', ROOT/'nbs') == []

def test_no_private_name_crosses_a_package_boundary():
    assert private_across(ROOT/'mnist37') == []

def test_the_sidebar_keeps_each_section_in_the_notebooks_order():
    side = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']
    sections = [s['contents'] for s in side if isinstance(s, dict)]
    assert len(sections) >= 4 and all(s == sorted(s) for s in sections), sections

@pytest.fixture
def broken(tmp_path):
    "A copy of the library and its notebooks' heads, to break on purpose."
    lib, nbs = tmp_path/'mnist37', tmp_path/'nbs'
    for f in (ROOT/'mnist37').rglob('*.py'):
        (lib/f.relative_to(ROOT/'mnist37')).parent.mkdir(parents=True, exist_ok=True)
        (lib/f.relative_to(ROOT/'mnist37')).write_text(f.read_text())
    nbs.mkdir()
    for mod, name in notebook_of(ROOT/'nbs').items():
        (nbs/name).write_text(json.dumps({'cells': [{'source': [f'#| default_exp {mod}']}]}))
    return lib, nbs

def test_the_checks_catch_a_broken_copy(broken):
    lib, nbs = broken
    assert wrong_way(lib, nbs) == [] and private_across(lib) == []
    with open(lib/'data.py', 'a') as f: f.write('\nfrom .checks.feedback import _something\nfrom .linear import x\n')
    with open(lib/'datasets'/'layout.py', 'a') as f: f.write('\ndef f():\n    from ..device import get_device\n')
    with open(lib/'datasets'/'install.py', 'a') as f: f.write('\ndef g():\n    import mnist37.grade\n')
    assert wrong_way(lib, nbs) == ['data (00_data.ipynb) imports checks.feedback (08b_checks.feedback.ipynb)',
                                   'data (00_data.ipynb) imports linear (03_linear.ipynb)',
                                   'datasets.install (12a_datasets.install.ipynb) imports grade (08f_grade.ipynb)',
                                   'datasets.layout (12_datasets.layout.ipynb) imports device (00a_device.ipynb)']
    assert private_across(lib) == ['data imports _something from checks.feedback']
