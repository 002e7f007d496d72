"""Student copies (issue 20 §1, §2, §4; issue 22's `student` defects): only the notebooks a student works in, no answer
anywhere, words for the student, a copy that runs to the end, never written over the sources or a person's files."""
import ast, json, os, platform, re, subprocess, tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import nbformat, pytest
from hypothesis import HealthCheck, given, settings, strategies as st
import mnist37.student as student
import mnist37.checks.writing as writing
from kernel import data_env, executed, problems   # tools/kernel.py
from mnist37.student import BEGIN, END, HOW, STUDENT_NOTEBOOKS, student_copies, student_notebook

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

@pytest.fixture(scope='module')
def copies(tmp_path_factory):
    "Fresh student copies of the real notebooks, made once for this file."
    return student_copies(NBS, tmp_path_factory.mktemp('copies')/'student')

def cells(p): return json.loads(Path(p).read_text())['cells']
def src(c): return ''.join(c['source'])
def solution_lines(s):
    "The code lines inside the solution blocks of `s`."
    out, inside = [], False
    for l in s.splitlines():
        if l.strip() in (BEGIN, END): inside = l.strip() == BEGIN
        elif inside and l.strip() and not l.strip().startswith('#'): out.append(l.strip())
    return out

# ---- §1: which notebooks
def test_copies_are_the_notebooks_a_student_works_in(copies):
    names = {p.stem for p in copies}
    assert names == set(STUDENT_NOTEBOOKS)
    assert {'00_data', '01_pixel_similarity', '05a_review', '06_questionnaire', '10_learner', '11_all_digits'} <= names
    checkers_and_tools = {p.stem for p in NBS.glob('*.ipynb')} - names
    assert {'08_exercises', '08b_checks.feedback', '08c_checks.pixels', '08d_checks.sgd', '08e_checks.models', '10a_checks.learner',
            '11b_checks.digits', '12c_datasets.mnist', '12b_datasets.source', '09a_cli', 'index'} <= checkers_and_tools
    # every notebook with an exercise a student writes is copied
    assert {p.stem for p in NBS.glob('[0-9]*.ipynb') if BEGIN in p.read_text() and not p.stem.startswith(('08a', '08_checks.scan'))} <= names
    assert sorted(os.listdir(copies[0].parent)) == sorted([p.name for p in copies] + [writing.MANIFEST])

# ---- §1: no answer in the folder
def test_no_solution_line_survives_in_its_cell(copies):
    stubs = 0
    for p in copies:
        by_id = {c['id']: src(c) for c in cells(p)}
        for c in cells(NBS/p.name):
            if c['cell_type'] == 'code' and BEGIN in src(c):
                copy = by_id[c['id']]
                assert BEGIN not in copy and END not in copy
                leaked = [l for l in solution_lines(src(c)) if l in copy.splitlines() or f'    {l}' in copy]
                assert not leaked, (p.name, leaked)
                stubs += 1
    assert stubs >= 15

def test_nothing_a_check_receives_keeps_a_value_outside_the_stub(copies):
    "11's `predicted_shape = (64, 10)  # your prediction` stood outside its block: the copy must give it `...`."
    checked = 0
    for p in copies:
        exercise = {c['id'] for c in cells(NBS/p.name) if c['cell_type'] == 'code' and BEGIN in src(c)}
        for c in cells(p):
            s = src(c)
            if c['id'] not in exercise: continue
            args = student._check_args(s)
            for node in ast.parse(s).body:
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in args for t in node.targets):
                    checked += 1
                    assert isinstance(node.value, ast.Constant) and node.value.value is ..., (p.name, ast.unparse(node))
    assert checked >= 6
    assert "predicted_top = 'up'" not in (copies[0].parent/'11_all_digits.ipynb').read_text()  # 11's prediction, not shipped

def test_no_hidden_guard_after_an_exercise_states_its_answer():
    nb = {'cells': [{'cell_type': 'code', 'id': 'a', 'metadata': {}, 'outputs': [], 'execution_count': None,
                     'source': f"{BEGIN}\nmy_factor = 2\n{END}\ncheck('grad_twice', my_factor)"},
                    {'cell_type': 'code', 'id': 'b', 'metadata': {}, 'outputs': [], 'execution_count': None,
                     'source': '#| hide\nassert my_factor == 2'},
                    {'cell_type': 'code', 'id': 'c', 'metadata': {}, 'outputs': [], 'execution_count': None,
                     'source': '#| hide\nfrom fastcore.test import test_eq'},
                    {'cell_type': 'code', 'id': 'd', 'metadata': {}, 'outputs': [], 'execution_count': None,
                     'source': '#| hide\nw = torch.ones(2)\ntest_eq(w * 2, 2 * w)  # states the factor without its name'},
                    {'cell_type': 'code', 'id': 'e', 'metadata': {}, 'outputs': [], 'execution_count': None,
                     'source': 'test_eq(1 + 1, 2)'}], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    out = student_notebook(nb, '03_x')
    # the guards after the exercise are gone (one names its answer, one states it another way); the hidden import a
    # later cell needs stays
    assert [c['id'] for c in out['cells']] == ['a', 'c', 'e']
    assert '2' not in out['cells'][0]['source'].replace('grad_twice', '')

# ---- §1: words for the student, the badge
def test_no_word_of_the_instructors_edition(copies):
    for p in copies:
        text = p.read_text().lower()
        for word in ['instructor', 'begin solution', 'end solution', 'worked answer', 'worked solution']:
            assert word not in text, (p.name, word)

def test_links_point_only_to_notebooks_in_the_copy(copies):
    names = {p.name for p in copies}
    for p in copies:
        for target in re.findall(r'\]\(([^)#\s]+\.ipynb)', p.read_text()):
            assert target in names, (p.name, target)

def test_colab_badge_is_left_out_or_points_at_the_instructors_copies(copies, tmp_path):
    assert not any('colab.research.google.com/github/mnist37' in p.read_text() or 'Open In Colab' in p.read_text() for p in copies)
    prefix = 'https://colab.research.google.com/github/teacher/class-2026/blob/main/'
    for p in student_copies(NBS, tmp_path/'with-colab', colab=prefix):
        badges = re.findall(r'\[!\[Open In Colab\]\([^)]*\)\]\(([^)]*)\)', p.read_text())
        assert badges == [prefix + p.name], (p.name, badges)

def test_first_exercise_cell_says_how_the_copy_works(copies):
    with_exercises = 0
    for p in copies:
        exercise = {c['id'] for c in cells(NBS/p.name) if c['cell_type'] == 'code' and BEGIN in src(c)}
        code = [src(c) for c in cells(p) if c['cell_type'] == 'code']
        ex = [src(c) for c in cells(p) if c['id'] in exercise]
        if not ex: continue
        with_exercises += 1
        assert ex[0].startswith(HOW) and sum(s.count(HOW) for s in code) == 1, p.name
    assert with_exercises >= 8

def test_copies_carry_the_metadata_jupyterlab_writes(copies):
    for p in copies:
        nb = nbformat.read(p, as_version=4); nbformat.validate(nb)
        assert nb.metadata.kernelspec == {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}
        assert nb.metadata.language_info.name == 'python' and nb.metadata.language_info.version == platform.python_version()
        assert all(not c.get('outputs') and c.get('execution_count') is None for c in nb.cells if c.cell_type == 'code')

# ---- §2: an untouched copy runs on
def test_a_top_level_stub_raises_nothing_and_says_which_exercise_is_not_written(capsys):
    nb = {'cells': [{'cell_type': 'markdown', 'id': 'm', 'metadata': {}, 'source': '**3.** Find the rate.'},
                    {'cell_type': 'code', 'id': 'a', 'metadata': {}, 'outputs': [], 'execution_count': None,
                     'source': f"{BEGIN}\nlo = 0.5\nmy_lr = lo\n{END}\nprint(my_lr)"}], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    out = student_notebook(nb, '02_x')['cells']
    exec(out[1]['source'], {})   # nothing raises
    assert capsys.readouterr().out.startswith('Exercise 3 is not written yet')
    assert 'lo =' not in out[1]['source'] and '0.5' not in out[1]['source'] and 'my_lr = ...' in out[1]['source']

def test_a_stub_in_a_class_body_raises_only_when_used():
    s = student._strip_solution(f'class Opt:\n    {BEGIN}\n    def step(self): pass\n    {END}', 'demo')
    ns = {}; exec(s, ns)                                        # defining the class does not raise
    with pytest.raises(NotImplementedError): ns['Opt']([1])

def _executed(path):
    "The copy at `path` run in a fresh kernel on the fallback data (tools/kernel.py): the notebook with its outputs."
    with tempfile.TemporaryDirectory(prefix='mnist37-fallback-') as home: return executed(path, data_env('fallback', home))[0]

def test_every_untouched_copy_runs_to_the_end_in_a_real_kernel(copies):
    "Run All: no error, nothing on stderr, and every exercise cell says it is not written yet (one pass, the fallback data)."
    with ProcessPoolExecutor(2) as pool: runs = list(pool.map(_executed, copies))
    for p, nb in zip(copies, runs):
        assert not problems(nb), (p.name, problems(nb))   # no error, nothing on stderr
        exercise = {c['id'] for c in cells(NBS/p.name) if c['cell_type'] == 'code' and BEGIN in src(c)}
        for i, c in enumerate(nb.cells):
            outs = c.get('outputs', [])
            text = ' '.join(o.get('text', '') + str(o.get('data', {}).get('text/plain', '')) for o in outs)
            if c.id in exercise: assert 'not written yet' in text, (p.name, i, text)

# ---- never over the sources, never over a person's files, never half-written (moved from test_safety.py)
def snapshot(root: Path) -> dict:
    "Every file under `root` (not following links) and its bytes."
    return {p: p.read_bytes() for p in root.rglob('*') if p.is_file() and not p.is_symlink()}

def notebook(cells) -> str:
    return json.dumps({'cells': [{'cell_type': 'code', 'id': f'c{i}', 'metadata': {}, 'execution_count': 1, 'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': ['out']}],
                                  'source': src} for i, src in enumerate(cells)], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})

@pytest.fixture
def nbs(tmp_path):
    "A small copy of a notebooks folder (never the real one: the old code would have rewritten it)."
    d = tmp_path/'repo'/'nbs'; d.mkdir(parents=True)
    (d/'00_data.ipynb').write_text(notebook([f'x = 1\ndef f():\n    {BEGIN}\n    return 42\n    {END}']))
    (d/'01_pixel_similarity.ipynb').write_text(notebook(['print(2)']))
    return d

@pytest.mark.parametrize('spell', ['same', 'dot-slash', 'absolute', 'symlink', 'parent', 'inside'])
def test_student_refuses_the_notebooks_folder_however_it_is_spelled(nbs, monkeypatch, spell):
    monkeypatch.chdir(nbs.parent)
    (nbs.parent/'link').symlink_to(nbs)
    out = {'same': 'nbs', 'dot-slash': './nbs/', 'absolute': str(nbs.resolve()), 'symlink': 'link', 'parent': '.', 'inside': 'nbs/student'}[spell]
    before = snapshot(nbs.parent)
    with pytest.raises(ValueError, match=r'refusing to write student copies to .*(is|holds|is inside) the source notebooks folder'):
        student_copies('nbs', out)
    assert snapshot(nbs.parent) == before and not (nbs/'student').exists()

def _bind(src, dst) -> bool:
    "Bind-mount `src` on `dst` (root on Linux); False where this machine does not allow it."
    dst.mkdir(parents=True, exist_ok=True)
    return subprocess.run(['mount', '--bind', str(src), str(dst)], capture_output=True).returncode == 0

@pytest.mark.parametrize('where', ['is', 'holds', 'is inside'])
def test_student_refuses_the_notebooks_folder_through_a_bind_mount(nbs, tmp_path, where):
    "Issue 22: a bind mount is the same folder under a path `resolve()` does not see through; compared by identity."
    mnt = tmp_path/'mnt'
    if not _bind(nbs.parent if where == 'holds' else nbs, mnt): pytest.skip('mount --bind is not allowed here')
    try:
        out = {'is': mnt, 'holds': mnt, 'is inside': mnt/'student'}[where]
        before = snapshot(nbs)
        with pytest.raises(ValueError, match=f'it {where} the source notebooks folder'): student_copies(nbs, out, force=True)
        assert snapshot(nbs) == before
    finally: subprocess.run(['umount', str(mnt)])

def test_student_compares_folders_by_device_and_inode(nbs, tmp_path, monkeypatch):
    "The same check where mounting is not allowed: a folder whose stat is the notebooks folder's is that folder."
    other = tmp_path/'elsewhere'; other.mkdir()
    real_stat = os.stat
    monkeypatch.setattr(writing.os, 'stat', lambda p, *a, **k: real_stat(nbs if Path(p) == other else p, *a, **k))
    with pytest.raises(ValueError, match='it is the source notebooks folder'): student_copies(nbs, other, force=True)

def test_student_cli_refusal_is_one_line(nbs, capsys):
    from mnist37.cli import run_command as run
    with pytest.raises(SystemExit) as e: run(['student', '--nbs', str(nbs), '--out', str(nbs)])
    assert 'refusing to write student copies' in str(e.value.code) and '\n' not in str(e.value.code)
    assert '42' in (nbs/'00_data.ipynb').read_text()

@pytest.mark.parametrize('data, why', [(b'my notes', 'not JSON'), (b'{"metadata": {}}', 'no list of cells'),
                                       (b'\xff\xfe{}', 'not UTF-8'), (b'[1, 2]', 'no list of cells')])
def test_a_broken_source_notebook_is_named_in_one_line(nbs, tmp_path, data, why):
    (nbs/'01_pixel_similarity.ipynb').write_bytes(data)
    from mnist37.cli import run_command as run
    with pytest.raises(SystemExit) as e: run(['student', '--nbs', str(nbs), '--out', str(tmp_path/'out')])
    msg = str(e.value.code)
    assert '01_pixel_similarity.ipynb is not a notebook' in msg and why in msg and '\n' not in msg, msg
    assert not (tmp_path/'out').exists()

def test_an_out_that_is_a_symlink_loop_is_named_not_a_traceback(nbs, tmp_path, capsys):
    loop = tmp_path/'loop'; loop.symlink_to(loop)
    with pytest.raises(ValueError, match=f'{loop}.*symbolic link that leads back to itself'): student_copies(nbs, loop/'student')
    from mnist37.cli import run_command as run
    with pytest.raises(SystemExit): run(['student', '--nbs', str(nbs), '--out', str(loop/'student')])
    err = capsys.readouterr().err
    assert str(loop) in err and 'loop' in err and 'Traceback' not in err, err

def test_student_refuses_a_persons_files_unless_forced(nbs, tmp_path):
    out = tmp_path/'student'
    first = student_copies(nbs, out)
    assert student_copies(nbs, out) == first  # over its own untouched copies: fine
    (out/'notes.txt').write_text('mine')
    (out/'00_data.ipynb').write_text('my answers')  # a student worked in their copy
    with pytest.raises(FileExistsError, match=r'holds files student copies did not write.*00_data.ipynb, notes.txt.*--force'):
        student_copies(nbs, out)
    assert (out/'00_data.ipynb').read_text() == 'my answers' and (out/'notes.txt').read_text() == 'mine'
    student_copies(nbs, out, force=True)
    assert 'NotImplementedError' in (out/'00_data.ipynb').read_text() and (out/'notes.txt').read_text() == 'mine'
    (out/'notes.txt').unlink(); student_copies(nbs, out)  # the forced copies are its own again
    f = tmp_path/'afile'; f.write_text('x')
    with pytest.raises(FileExistsError, match='is not a folder'): student_copies(nbs, f)

def test_student_never_writes_partially(nbs, tmp_path):
    (nbs/'02_sgd.ipynb').write_text(notebook([f'{BEGIN}\nnever closed']))
    with pytest.raises(ValueError, match='never closed'): student_copies(nbs, tmp_path/'student')
    assert not (tmp_path/'student').exists() and not list(tmp_path.glob('.mnist37-student-tmp-*'))
    (tmp_path/'student').mkdir()
    with pytest.raises(ValueError, match='never closed'): student_copies(nbs, tmp_path/'student')
    assert list((tmp_path/'student').iterdir()) == []

def test_student_folder_is_readable_as_any_new_folder(nbs, tmp_path):
    "A class server's other users read the copies: the new folder gets the umask's mode, not a temp folder's 0700."
    old = os.umask(0o022)
    try: student_copies(nbs, tmp_path/'student')
    finally: os.umask(old)
    assert (tmp_path/'student').stat().st_mode & 0o777 == 0o755, oct((tmp_path/'student').stat().st_mode)

@HYP
@given(parts=st.lists(st.sampled_from(['nbs', 'link', 'other', 'new', '.', '..', 'repo']), min_size=1, max_size=4), force=st.booleans())
def test_student_property_never_destroys(tmp_path_factory, parts, force):
    "Any output path (spelled through links, dots and parents) and either force: the sources and a person's files stay as they were."
    root = tmp_path_factory.mktemp('prop')/'repo'; nbs = root/'nbs'; nbs.mkdir(parents=True)
    (nbs/'00_data.ipynb').write_text(notebook([f'{BEGIN}\nsecret = 42\n{END}']))
    (root/'link').symlink_to(nbs); (root/'other').mkdir(); (root/'other'/'mine.txt').write_text('mine')
    out = root.joinpath(*parts)
    if root.parent not in [out.resolve(), *out.resolve().parents]: return  # outside the sandbox
    before = snapshot(root.parent)
    try: student_copies(nbs, out, force=force)
    except (ValueError, FileExistsError): assert snapshot(root.parent) == before; return
    after = snapshot(root.parent)
    assert {p: b for p, b in after.items() if p in before} == before  # nothing that existed was changed
    assert (out.resolve()/'00_data.ipynb').is_file() and nbs.resolve() not in [out.resolve(), *out.resolve().parents]
