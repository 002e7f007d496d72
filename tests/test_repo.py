"The repository keeps its promises: README commands, CI, requirements, notebook heads, the sidebar, no data committed."
import ast, json, re, shutil, subprocess, sys
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
    # pytest.ini forces no workers (the inner loop runs one process): the whole suite asks for them, and skips nothing
    pytest_args = test_cmd.split('bin/pytest')[1]
    assert ' -n ' in pytest_args and not re.search(r' (-m|-k|--deselect)\b', pytest_args), test_cmd
    # CI runs the same command, its install once (the first line below) and the rest after the README check (with the
    # go for Colab's background notebooks between nbdev_test and pytest, pip's warnings about this machine's missing
    # package folders dropped from the install's output, and nothing else added)
    install, tests = test_cmd.split(' && ', 2)[:2], test_cmd.split(' && ', 2)[2]
    ci = [l.replace(' && touch "$colab_dir/go"', '').replace(" 2>&1 | { grep -v '^WARNING: Location' || true; }", '')
          for l in (ROOT/'.ci'/'run').read_text().splitlines()]
    assert ' && '.join(install) in ci and tests in ci and ci.index(' && '.join(install)) < ci.index(tests), (install, tests)
    assert main_job.startswith(' && '.join(install))

def installed(name):
    from importlib.metadata import PackageNotFoundError, version
    try: return version(name)
    except PackageNotFoundError: return None

def test_requirement_ranges_hold_both_tested_stacks():
    "Each range the library asks for admits the versions CI tests: the [dev] set installed here, and Colab's stack."
    from packaging.requirements import Requirement
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    colab = dict(l.split('==') for l in (ROOT/'.ci'/'colab-stack.txt').read_text().split())
    norm = lambda n: re.sub(r'[-_.]+', '-', n).lower()
    colab = {norm(k): v for k, v in colab.items()}
    outside = []
    for r in map(Requirement, cfg['DEFAULT']['requirements'].split()):
        for stack, v in [('dev', installed(r.name)), ('colab', colab.get(norm(r.name)))]:
            if v is None and stack == 'dev': outside.append(f'{r.name}: not installed in the dev venv')
            elif v is not None and not r.specifier.contains(v, prereleases=True): outside.append(f'{r} excludes {stack} {v}')
    assert not outside, outside

def test_every_requirement_is_imported():
    "A requirement nothing imports is dead weight on a student's machine (fastai brings its own torchvision)."
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    from packaging.requirements import Requirement
    modules = {'pillow': 'PIL'}
    code = '\n'.join(p.read_text() for p in (ROOT/'mnist37').rglob('*.py'))
    code += '\n'.join(''.join(c['source']) for nb in (ROOT/'nbs').glob('*.ipynb') for c in cells(nb) if c['cell_type'] == 'code')
    unused = [r.name for r in map(Requirement, cfg['DEFAULT']['requirements'].split())
              if not re.search(rf'^\s*(from|import)\s+{modules.get(r.name.lower(), r.name)}\b', code, re.M)]
    assert not unused, f'required in settings.ini, imported nowhere in mnist37/ or nbs/: {unused}'

def test_the_library_runs_without_nbdev(tmp_path):
    "Colab has no nbdev, execnb or ghapi: every module imports, and student copies are written, with them blocked."
    code = ("import sys, pkgutil, importlib\n"
            "for m in ('nbdev', 'execnb', 'ghapi'): sys.modules[m] = None  # any import of them now fails\n"
            "import mnist37\n"
            "mods = [m.name for m in pkgutil.walk_packages(mnist37.__path__, 'mnist37.') if '._' not in m.name]\n"
            "for m in mods: importlib.import_module(m)\n"
            f"from mnist37.student import student_copies; print(len(student_copies({str(ROOT/'nbs')!r}, {str(tmp_path/'copies')!r})), len(mods))")
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

def test_every_notebook_says_its_device():
    for nb in NBS:
        src = '\n'.join(''.join(c['source']) for c in cells(nb))
        if 'get_device' in src and nb.name != '00a_device.ipynb': assert re.search(r'[Dd]evice: \{device', src), nb.name
# Which data a notebook runs on needs no check here: mnist_sample() announces it itself (tests/test_data.py), and a
# figure asserted without the notebook's FULL guard fails the fallback kernel run (tests/test_kernel.py).

SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

def binds(node) -> set:
    "Names `node` binds in the notebook's namespace (not the locals of the functions, classes and comprehensions in it)."
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): return {node.name}
    if isinstance(node, SCOPES): return set()
    if isinstance(node, (ast.Import, ast.ImportFrom)): return {(a.asname or a.name).split('.')[0] for a in node.names}
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load): return {node.id}
    return set().union(*[binds(c) for c in ast.iter_child_nodes(node)])

def reads(node, local=frozenset()) -> set:
    "Names `node` reads from the notebook's namespace (a function's own arguments and locals are not)."
    if isinstance(node, ast.Name): return {node.id} - local if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, SCOPES):
        args = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)} if isinstance(getattr(node, 'args', None), ast.arguments) else set()
        local = local | args | {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    return set().union(*[reads(c, local) for c in ast.iter_child_nodes(node)])

def flags(src: str) -> set:
    "The test flags (`#| slow`, `#| cuda`) among a cell's leading `#|` directive lines."
    found = set()
    for line in src.splitlines():
        if not line.startswith('#|'): break
        found |= set(line[2:].replace(':', ' ').split()) & {'slow', 'cuda'}
    return found

def python(src: str) -> ast.Module:
    "A cell as Python (IPython's magics and shell escapes turned into calls, as the kernel does)."
    from IPython.core.inputtransformer2 import TransformerManager
    return ast.parse(TransformerManager().transform_cell(src))

def leaks(nb: Path) -> list:
    "Each name a `#| slow`/`#| cuda` cell binds that a later cell without that flag reads before binding it itself."
    code = [(i, ''.join(c['source'])) for i, c in enumerate(cells(nb)) if c['cell_type'] == 'code']
    found = []
    for k, (i, src) in enumerate(code):
        if not (fl := flags(src)): continue
        pending = binds(python(src))
        for j, later in code[k+1:]:
            if fl <= flags(later): continue   # skipped whenever this one is
            for stmt in python(later).body:
                found += [f'{nb.name}: cell {j} reads {n!r} from #| {"/".join(sorted(fl))} cell {i}' for n in sorted(reads(stmt) & pending)]
                pending -= binds(stmt)
    return found

def test_slow_and_cuda_cells_are_leaves():
    """nbdev_test and the student copies' run skip #| slow and #| cuda cells: no later cell may read what they bind, not
    even a name an earlier cell bound too (nbdev_test would pass, on the earlier value)."""
    flagged = [nb for nb in NBS if any(flags(''.join(c['source'])) for c in cells(nb) if c['cell_type'] == 'code')]
    assert flagged and not [l for nb in flagged for l in leaks(nb)], [l for nb in flagged for l in leaks(nb)]

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

def sidebar_notebooks() -> list:
    import yaml
    def walk(items):
        for it in items: yield from [it] if isinstance(it, str) else walk(it.get('contents', []))
    return list(walk(yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']))

def test_the_sidebar_lists_every_notebook_once():
    "nbs/sidebar.yml is kept by hand (settings.ini: custom_sidebar = True, for its sections): nothing missing or stale."
    listed, have = sidebar_notebooks(), sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    assert sorted(listed) == have, {'not in sidebar.yml': set(have) - set(listed), 'no such notebook': set(listed) - set(have)}
    assert len(set(listed)) == len(listed), 'a notebook is listed twice'

def test_nbdev_keeps_the_site_config_and_readme_is_index_through_nbconvert(tmp_path):
    """nbdev_prepare and nbdev_docs rewrite nbs/nbdev.yml from settings.ini, and nbdev_readme renders README.md with
    Quarto (not installable on CI's machine, and its markdown differs): README.md is nbconvert's markdown of
    nbs/index.ipynb (the command in .ci/run), and nbdev's own rewrite of the site config changes nothing."""
    (tmp_path/'nbs').mkdir(); shutil.copy(ROOT/'settings.ini', tmp_path)
    for f in ['_quarto.yml', 'nbdev.yml']: shutil.copy(ROOT/'nbs'/f, tmp_path/'nbs')
    subprocess.run([sys.executable, '-c', 'from nbdev.quarto import refresh_quarto_yml; refresh_quarto_yml()'], cwd=tmp_path, check=True)
    for f in ['_quarto.yml', 'nbdev.yml']: assert (tmp_path/'nbs'/f).read_text() == (ROOT/'nbs'/f).read_text(), f
    cmd = re.search(r'^(.*jupyter nbconvert .*) > README\.md$', (ROOT/'.ci'/'run').read_text(), re.M)[1]
    made = subprocess.run(cmd.replace('.venv/bin/', str(Path(sys.executable).parent) + '/'), shell=True, cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    assert made == (ROOT/'README.md').read_text(), 'README.md is not index.ipynb through nbconvert: run the README command in .ci/run'

def test_every_slow_entry_names_a_test():
    "tests/conftest.py marks tests slow by name: a renamed test or fixture would silently join the inner loop."
    from conftest import SLOW, SLOW_FIXTURES
    fixtures = {n.name for f in (ROOT/'tests').glob('*.py') for n in ast.walk(ast.parse(f.read_text()))
                if isinstance(n, ast.FunctionDef) and any('fixture' in ast.unparse(d) for d in n.decorator_list)}
    assert SLOW_FIXTURES <= fixtures, SLOW_FIXTURES - fixtures
    for entry in SLOW:
        file, func = (entry, None) if isinstance(entry, str) else entry
        assert (ROOT/'tests'/file).exists(), f'conftest.SLOW names {file}, which does not exist'
        if func: assert func in {n.name for n in ast.parse((ROOT/'tests'/file).read_text()).body if isinstance(n, ast.FunctionDef)}, entry

def test_the_license_file_is_the_one_settings_ini_names():
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini'); cfg = cfg['DEFAULT']
    text = (ROOT/'LICENSE').read_text()
    names = {'apache2': 'Apache License\n *Version 2.0, January 2004'}
    assert re.search(names[cfg['license']], text) and 'END OF TERMS AND CONDITIONS' in text, cfg['license']
    assert f"Copyright {cfg['copyright']}" in text, cfg['copyright']

def test_github_runs_the_ci_script_itself():
    "One CI definition: the workflow's steps install PyTorch's CPU build and run .ci/run; they test nothing on their own."
    import yaml
    jobs = yaml.safe_load((ROOT/'.github'/'workflows'/'test.yaml').read_text())['jobs']
    runs = [s['run'] for job in jobs.values() for s in job['steps'] if 'run' in s]
    assert 'bash .ci/run' in runs and not [r for r in runs if re.search(r'pytest|nbdev_test|nbdev_export|nbconvert|\.ci/colab', r)], runs

def test_cpu_torch_pins_are_the_dev_pins():
    "The README's and .ci/cpu-torch's CPU build of PyTorch is the [dev] set's torch and torchvision."
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    dev = sorted(r for r in cfg['DEFAULT']['dev_requirements'].split() if r.split('==')[0] in ('torch', 'torchvision'))
    assert len(dev) == 2 and all('==' in r for r in dev), dev
    commands = (ROOT/'README.md').read_text().replace('\\\n', ' ').splitlines()
    cpu = [l for l in commands if 'download.pytorch.org/whl/cpu' in l and 'pip install' in l]
    assert cpu, "README.md has no pip install from PyTorch's CPU index"
    for line in cpu: assert sorted(re.findall(r'\btorch(?:vision)?==\S+', line)) == dev, line

def test_k_selects_a_test_file_by_the_modules_it_imports(tmp_path):
    "The inner loop's `pytest -m 'not slow' -k linear`: a test file's mnist37 imports are keywords of its tests."
    from conftest import modules_used
    f = tmp_path/'test_x.py'
    f.write_text('import os\nfrom mnist37.linear import lesson_xy\nimport mnist37.net as n\nfrom mnist37 import optim, fast\nfrom mnist37x import no\n')
    assert modules_used(f) == {'linear', 'net', 'optim', 'fast'}

def test_ci_stops_when_nbdev_test_fails():
    "`set -e` lets a failure before the last command of an && list pass: .ci/run checks its test line's status itself."
    lines = (ROOT/'.ci'/'run').read_text().splitlines()
    i = next(i for i, l in enumerate(lines) if 'bin/nbdev_test' in l and '&&' in l and not l.startswith('#'))
    script = '\n'.join(['set -euo pipefail', 'start=$SECONDS', 'false && true', *lines[i + 1:i + 3], 'echo passed'])  # nbdev_test failing
    r = subprocess.run(['bash', '-c', script], capture_output=True, text=True)
    assert r.returncode != 0 and 'passed' not in r.stdout, r.stdout

def test_no_name_is_used_undefined_in_the_library_tests_or_tools():
    "pyflakes' undefined names, in the fast loop: a NameError in a slow test (a missing import) surfaced only in CI once."
    import ast
    from pyflakes.checker import Checker
    from pyflakes.messages import UndefinedName
    files = [*(ROOT/'mnist37').rglob('*.py'), *(ROOT/'tests').glob('*.py'), *(ROOT/'tools').glob('*.py')]
    found = [f'{f.relative_to(ROOT)}:{m.lineno}: {m.message % m.message_args}' for f in files
             for m in Checker(ast.parse(f.read_text()), filename=str(f), builtins={'get_ipython'}).messages  # an IPython kernel's own
             if isinstance(m, UndefinedName)]
    assert len(files) > 40 and not found, found

def test_property_tests_draw_the_same_examples_on_every_run():
    "A property test whose examples came from the clock could fail CI on one run in many and pass on the retry."
    from hypothesis import settings
    assert settings.default.derandomize, 'tests/conftest.py should load a profile with derandomize=True'
    overriding = [f.name for f in (ROOT/'tests').glob('test_*.py') if re.search(r'derandomize\s*=\s*False', f.read_text())]
    assert not overriding, overriding
