"The repository keeps its promises: README commands, CI, pins, notebook heads, no data committed."
import json, re, subprocess, sys
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))

def quick_start():
    "The commands in the README's quick-start code block."
    text = (ROOT/'README.md').read_text()
    block = re.search(r'## Quick start.*?```sh\n(.*?)```', text, re.S).group(1)
    return [l for l in block.splitlines() if l.strip()]

def test_readme_has_two_commands_and_ci_runs_the_test_one():
    main_job, test_cmd = quick_start()
    assert main_job.endswith('mnist37 train') and 'pytest' in test_cmd and 'nbdev_test' in test_cmd
    assert test_cmd in (ROOT/'.ci'/'run').read_text().splitlines()

def test_pins():
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    req, dev = cfg['DEFAULT']['requirements'].split(), cfg['DEFAULT']['dev_requirements'].split()
    # the library: ranges only, nothing that only builds the docs (a student's Colab keeps its own torch and fastai)
    assert not [r for r in req if '==' in r] and not [r for r in req if re.match(r'(nbdev|execnb|ghapi)\b', r)], req
    for rng in ['torch>=2.1,<3', 'fastai>=2.8,<2.9', 'fastprogress>=1.1.6,<1.2']: assert rng in req
    # the dev set: the exact working set of nbdev 2.4.14
    for pin in ['torch==2.14.1', 'torchvision==0.29.1', 'fastai==2.8.7', 'fastcore>=1.12.3,<2', 'nbdev==2.4.14',
                'execnb<0.2', 'pytest', 'nbclient', 'pexpect']: assert pin in dev
    assert cfg['DEFAULT']['tst_flags'].split() == ['notest', 'slow', 'cuda']
    assert 'mnist37=mnist37.cli:main' in cfg['DEFAULT']['console_scripts']

def test_the_library_runs_without_nbdev():
    "Colab has no nbdev, execnb or ghapi: every module imports, and student copies are written, with them blocked."
    code = ("import sys, pkgutil, importlib, tempfile\n"
            "for m in ('nbdev', 'execnb', 'ghapi'): sys.modules[m] = None  # any import of them now fails\n"
            "import mnist37\n"
            "mods = [m.name for m in pkgutil.iter_modules(mnist37.__path__) if not m.name.startswith('_')]\n"
            "for m in mods: importlib.import_module(f'mnist37.{m}')\n"
            f"from mnist37.student import student_copies; print(len(student_copies({str(ROOT/'nbs')!r}, tempfile.mkdtemp())), len(mods))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    n_copies, n_mods = map(int, r.stdout.split())
    assert n_copies >= 10 and n_mods >= 10

def cells(nb): return json.loads(nb.read_text())['cells']

def test_every_notebook_opens_with_colab_badge_and_install_cell():
    assert len(NBS) >= 9
    colab_cells = set()
    for nb in NBS:
        cs = cells(nb)
        title, second = [''.join(c['source']) for c in cs if c['cell_type'] == 'markdown'][:2]
        # nbdev makes the first markdown cell the page's front matter and drops anything after its "> description"
        assert re.fullmatch(r'# [^\n]+\n\n> [^\n]+', title), (nb.name, title[:200])
        assert f'blob/main/nbs/{nb.name}' in second, nb.name
        code = [''.join(c['source']) for c in cs if c['cell_type'] == 'code' and not ''.join(c['source']).startswith('#| default_exp')]
        assert "'google.colab' in str(get_ipython())" in code[0], nb.name
        colab_cells.add(code[0])
    # one install cell, the same everywhere: it installs main, which CI has tested on Colab's stack (.ci/colab)
    assert len(colab_cells) == 1 and 'mnist37.git@main' in colab_cells.pop()

def test_every_notebook_says_its_device_and_data():
    for nb in NBS:
        src = '\n'.join(''.join(c['source']) for c in cells(nb))
        if 'get_device' in src and nb.name != '00a_device.ipynb': assert re.search(r'[Dd]evice: \{device', src), nb.name
        if 'mnist_sample()' in src: assert 'FULL' in src or 'full' in src, nb.name

def test_slow_and_cuda_cells_are_flagged_leaves():
    for nb in NBS:
        cs = [''.join(c['source']) for c in cells(nb) if c['cell_type'] == 'code']
        for i, src in enumerate(cs):
            if src.startswith(('#| slow', '#| cuda')):
                defined = set(re.findall(r'^(\w+)\s*=', src, re.M))
                later = '\n'.join(cs[i+1:])
                assert not any(re.search(rf'\b{v}\b', later) for v in defined), (nb.name, defined)

def test_saved_outputs_are_small_and_have_no_errors():
    for nb in NBS + [ROOT/'nbs'/'index.ipynb']:
        assert nb.stat().st_size < 600_000, nb.name
        for c in cells(nb):
            for o in c.get('outputs', []): assert o.get('output_type') != 'error', nb.name

def test_no_data_or_images_committed():
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in files if re.search(r'\.(png|jpg|tgz|npz|pt|pth)$|mnist_sample/', f)]

def test_nbdev_test_skips_slow_and_cuda_cells_unless_asked(tmp_path):
    import nbformat, shutil, sys
    nbdev_test = shutil.which('nbdev_test', path=str(Path(sys.executable).parent)) or shutil.which('nbdev_test')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1'),
                                         nbformat.v4.new_code_cell('#| slow\nraise RuntimeError("the slow cell ran")'),
                                         nbformat.v4.new_code_cell('#| cuda\nraise RuntimeError("the cuda cell ran")')])
    f = tmp_path/'flags.ipynb'; nbformat.write(nb, f)
    run = lambda *a: subprocess.run([nbdev_test, '--path', str(f), *a], cwd=ROOT, capture_output=True, text=True)
    assert run().returncode == 0
    for flag in ['slow', 'cuda']:
        r = run('--flags', flag)
        assert r.returncode != 0 and f'the {flag} cell ran' in r.stdout + r.stderr

IMPORT_LINE = re.compile(r'(from \S+ )?import \S')

def test_imports_have_cells_of_their_own():
    "nbdev's doc build runs every cell that imports: one that also computes fails there on names from other cells."
    mixed = []
    for nb in NBS + [ROOT/'nbs'/'index.ipynb']:
        for i, c in enumerate(json.loads(nb.read_text())['cells']):
            lines = [l for l in ''.join(c['source']).split('\n') if l.strip() and not l.lstrip().startswith('#')]
            if c['cell_type'] != 'code' or ''.join(c['source']).startswith('#| export'): continue
            if any(IMPORT_LINE.match(l) for l in lines) and not all(IMPORT_LINE.match(l) for l in lines):
                mixed.append(f'{nb.name} cell {i}')
    assert not mixed, f'cells that import and compute (put the imports in a cell of their own): {mixed}'
