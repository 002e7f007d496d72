"""`mnist37 grade` (issue 20 §5): every notebook run in its own kernel, each exercise checked again by the grader on a
seed the notebook never saw; hangs, crashes, files that are not notebooks and fakes graded for what they are."""
import csv, json, os, shutil
from pathlib import Path
import pytest
from mnist37.checks.scan import exercises, read_notebook
from mnist37.grade import COLUMNS, VERDICTS, grade, summary, submissions
from mnist37.student import student_copies

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
SMALL = ['00_data.ipynb', '01_pixel_similarity.ipynb']   # two lesson notebooks: a class graded in minutes

def edit(src: Path, dst: Path, change):
    "Copy the notebook `src` to `dst`, giving `change(source) -> new source` every code cell."
    nb = json.loads(src.read_text())
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['source'] = change(''.join(c['source']))
    dst.parent.mkdir(parents=True, exist_ok=True); dst.write_text(json.dumps(nb))

def solve_rmse(s):   # the one exercise this student solves (01's is_3_nearest)
    return ("def is_3_nearest(x, threes, sevens):\n    if x.ndim == 3: x = x.view(len(x), 1, 28, 28)\n"
            "    return mnist_distance(x, threes).min(-1).values < mnist_distance(x, sevens).min(-1).values\n"
            "check('is_3_nearest', is_3_nearest)") if 'def is_3_nearest' in s else s

def tiny(code: str) -> str:
    "A one-cell notebook, as a student would hand it in."
    return json.dumps({'cells': [{'cell_type': 'code', 'execution_count': None, 'id': 'a', 'metadata': {}, 'outputs': [],
                                  'source': 'from mnist37.exercises import check\n' + code}],
                       'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})

# ---- fast: what is graded
def test_the_exercises_of_each_student_copy_are_those_of_the_instructors_notebook(tmp_path):
    for p in student_copies(NBS, tmp_path/'copies'):
        ours, theirs = exercises(read_notebook(NBS/p.name)), exercises(read_notebook(p))
        assert [(l, f, a) for l, c, m, f, a in ours] == [(l, f, a) for l, c, m, f, a in theirs], p.name
    labels = [l for n in ['00_data', '01_pixel_similarity', '02_sgd', '03_linear', '04_optimizer', '05_neural_net', '10_learner',
                          '11_all_digits'] for l, *_ in exercises(read_notebook(NBS/f'{n}.ipynb'))]
    assert len(labels) == len(set(labels)) and {'stack_shapes', 'ideals_shapes', 'is_3_nearest', 'numerical_grad', 'momentum_step',
        'largest_lr', 'no_sigmoid_loss', 'grad_twice', 'MomentumSGD', 'simple_net2', 'fit', 'softmax_t', 'softmax_t_prediction', 'bce'} <= set(labels)

def test_submissions_name_students_by_folder_or_file(tmp_path):
    for f in ['ann/00_data.ipynb', 'ann/sub/01_pixel_similarity.ipynb', 'bo.ipynb', 'ann/.ipynb_checkpoints/00_data-checkpoint.ipynb']:
        (tmp_path/f).parent.mkdir(parents=True, exist_ok=True); (tmp_path/f).write_text('{}')
    assert [(s, p.name) for s, p in submissions(tmp_path)] == [('ann', '00_data.ipynb'), ('ann', '01_pixel_similarity.ipynb'),
                                                               ('bo', 'bo.ipynb')]
    with pytest.raises(NotADirectoryError, match='does not exist'): submissions(tmp_path/'nope')
    with pytest.raises(NotADirectoryError, match='is a file, not a folder'): submissions(tmp_path/'bo.ipynb')

def test_a_persons_csv_is_never_replaced_and_bad_settings_are_named(tmp_path):
    (tmp_path/'class').mkdir(); (tmp_path/'class'/'a.ipynb').write_text(tiny('my_factor = 2'))
    (tmp_path/'mine.csv').write_text('name,mark\nann,A\n')
    with pytest.raises(FileExistsError, match='mine.csv exists and is not a grades table'):
        grade(tmp_path/'class', tmp_path/'mine.csv', jobs=1, timeout=60)
    assert (tmp_path/'mine.csv').read_text() == 'name,mark\nann,A\n'
    with pytest.raises(ValueError, match='--jobs 0'): grade(tmp_path/'class', tmp_path/'g.csv', jobs=0)

def test_summary_has_a_row_per_student_and_a_column_per_exercise():
    rows = [('ann', '03.ipynb', 'grad_twice', 'correct', ''), ('ann', '03.ipynb', 'no_sigmoid_loss', 'not written', ''),
            ('bo', '03.ipynb', 'grad_twice', 'timed out', 'cell 3 ran past'), ('cy', 'cy.ipynb', '', 'error', 'cy.ipynb is not a notebook')]
    lines = summary(rows).splitlines()
    assert lines[0].split() == ['student', 'grad_twice', 'no_sigmoid_loss']
    assert lines[1].split() == ['ann', 'ok', '-'] and lines[2].split() == ['bo', 'TIME']
    assert lines[3].split() == ['cy'] and 'cy.ipynb is not a notebook' in lines[4]   # blank: not graded, and why
    assert not [l for l in lines if 'not handed in:' in l]   # bo handed 03 in; cy's one notebook is not a lesson's

def test_a_class_of_both_layouts_says_nothing_is_missing_for_a_student_with_one_notebook():
    "New-user review: bob.ipynb was graded (-) and also said 'not handed in: 00_data.ipynb'; dan's file, not a notebook, read 'missing'."
    rows = [('ann', '00_data.ipynb', 'stack_shapes', 'correct', ''), ('bob', 'bob.ipynb', 'stack_shapes', 'not written', ''),
            ('cy', '01_x.ipynb', 'is_3_nearest', 'correct', ''), ('dan', 'dan.ipynb', '', 'error', 'dan.ipynb is not a notebook')]
    text = summary(rows); lines = text.splitlines()
    assert [l.split() for l in lines[1:5]] == [['ann', 'ok', 'missing'], ['bob', '-'], ['cy', 'missing', 'ok'], ['dan']], text
    assert 'cy: not handed in: 00_data.ipynb' in lines and not [l for l in lines if l.startswith(('bob: not', 'dan: not'))], text
    assert 'dan: dan.ipynb: dan.ipynb is not a notebook' in lines, text

def test_grade_says_where_the_csv_went_and_what_its_marks_mean(tmp_path, capsys):
    "A file that is not a notebook is graded without a kernel: the whole command in a second."
    (tmp_path/'class').mkdir(); (tmp_path/'class'/'cy.ipynb').write_text('my answers are in my head')
    grade(tmp_path/'class', tmp_path/'g.csv', jobs=1, timeout=60)
    out = capsys.readouterr().out
    assert f"\nEvery verdict, with its message: {tmp_path/'g.csv'}\n" in out, out
    legend = ' '.join(out.split())   # wrapped at 80 columns
    assert 'ok = correct, no = not yet, - = not written' in legend and 'blank = not graded (see above)' in legend, out
    assert [l.split() for l in out.splitlines() if l.startswith('cy')][0] == ['cy']   # cy's row, blank; the line under the table says why

def test_summary_names_every_exercise_in_full_within_80_columns_and_says_what_was_not_handed_in():
    "New-user review: the headers were cut at 12 characters, and a notebook not handed in showed blank cells."
    names = ['stack_shapes', 'broadcast_shapes', 'is_3_rmse', 'numerical_grad', 'momentum_step', 'largest_lr',
             'no_sigmoid_loss', 'grad_twice', 'MomentumSGD', 'fit', 'softmax_t_prediction', 'bce']
    rows = [('ann', f'{i:02}_x.ipynb', e, 'correct', '') for i, e in enumerate(names)] + [('bo', '00_x.ipynb', names[0], 'not yet', '')]
    lines = summary(rows).splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    header = [w for l in lines if l.startswith('student') for w in l.split()[1:]]
    assert header == names   # each name whole, once, in notebook order
    bo = [w for l in lines if l.startswith('bo ') for w in l.split()[1:]]
    assert bo == ['no'] + ['missing'] * (len(names) - 1)
    assert 'bo: not handed in: 01_x.ipynb, 02_x.ipynb' in summary(rows)
    assert not [l for l in lines if l.startswith('ann: not handed in')]

# ---- slow: a class graded in real kernels
@pytest.fixture(scope='module')
def graded(tmp_path_factory):
    "A small class (one or two lesson notebooks each, or one odd file) graded once: (rows read back from the CSV, the class folder)."
    d = tmp_path_factory.mktemp('class'); cls = d/'class'
    copies = student_copies(NBS, d/'copies')
    by_name = {p.name: p for p in copies}
    # Two notebooks for the instructor, an untouched copy and the hang (the rest of a hanging student is graded); the
    # others hand in only the notebook they changed: an untouched copy beside it would only repeat 'untouched'.
    for n in SMALL:
        (cls/'teacher').mkdir(parents=True, exist_ok=True); shutil.copy(NBS/n, cls/'teacher'/n)
        for who in ['untouched', 'hang']: (cls/who).mkdir(exist_ok=True); shutil.copy(by_name[n], cls/who/n)
    for who in ['half', 'cheat', 'deleter', 'dropper']: (cls/who).mkdir()
    edit(by_name['01_pixel_similarity.ipynb'], cls/'half'/'01_pixel_similarity.ipynb', solve_rmse)
    edit(by_name['01_pixel_similarity.ipynb'], cls/'cheat'/'01_pixel_similarity.ipynb', lambda s: (
        "def is_3_nearest(x, threes, sevens): return x.sum() > 0\nprint('Correct! the nearest-neighbour verdicts')\n"
        "check = lambda *a, **k: print('Correct!')\ncheck('is_3_nearest', is_3_nearest)") if 'def is_3_nearest' in s else s)
    edit(by_name['01_pixel_similarity.ipynb'], cls/'hang'/'01_pixel_similarity.ipynb',
         lambda s: 'import time\nwhile True: time.sleep(1)' if 'Exercise 3 is not written yet' in s else solve_rmse(s))
    edit(by_name['01_pixel_similarity.ipynb'], cls/'dropper'/'01_pixel_similarity.ipynb',   # a wrong answer, its check deleted
         lambda s: "def is_3_nearest(x, threes, sevens): return x.sum() > 0" if 'def is_3_nearest' in s else s)
    (cls/'deleter'/'my_notes.txt').write_text('keep me')
    edit(by_name['00_data.ipynb'], cls/'deleter'/'00_data.ipynb',
         lambda s: "import os; os.remove('my_notes.txt')\n" + s if 'Exercise 2 is not written yet' in s else s)
    (cls/'crash.ipynb').write_text(tiny("my_factor = 2\nimport os; os._exit(1)\ncheck('grad_twice', my_factor)"))
    (cls/'notebook.ipynb').write_text('{"cells": ')
    before = {p: p.read_bytes() for p in cls.rglob('*') if p.is_file()}
    old = dict(os.environ)
    os.environ.update(FASTAI_HOME=str(d/'fastai'), MNIST37_OFFLINE='1'); os.environ.pop('MNIST37_ARCHIVE', None)
    try: grade(cls, d/'grades.csv', jobs=2, timeout=60, seed=None, nbs=NBS)   # the kernels: the offline fallback data
    finally: os.environ.clear(); os.environ.update(old)
    assert {p: p.read_bytes() for p in cls.rglob('*') if p.is_file()} == before   # no submission changed
    with open(d/'grades.csv', newline='') as f: rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS
    return rows[1:]

def verdicts(rows, student):
    return {r[2]: r[3] for r in rows if r[0] == student and r[2]}

def test_instructors_notebooks_are_all_correct(graded):
    assert verdicts(graded, 'teacher') == {'stack_shapes': 'correct', 'ideals_shapes': 'correct', 'is_3_nearest': 'correct'}

def test_untouched_copies_are_not_written_anywhere(graded):
    assert verdicts(graded, 'untouched') == dict.fromkeys(['stack_shapes', 'ideals_shapes', 'is_3_nearest'], 'not written')

def test_a_copy_with_one_exercise_solved_gets_exactly_that_one(graded):
    assert verdicts(graded, 'half') == {'ideals_shapes': 'not written', 'is_3_nearest': 'correct'}

def test_a_printed_or_faked_correct_counts_for_nothing(graded):
    v = verdicts(graded, 'cheat')
    assert v['is_3_nearest'] == 'not yet', graded

def test_a_hanging_copy_is_timed_out_and_the_rest_graded(graded):
    assert verdicts(graded, 'hang') == {'stack_shapes': 'not written', 'ideals_shapes': 'not written', 'is_3_nearest': 'correct'}
    own = [r for r in graded if r[0] == 'hang' and not r[2]]
    assert [r[3] for r in own] == ['timed out'] and 'limit' in own[0][4]

def test_a_crashing_kernel_and_a_file_that_is_not_a_notebook_are_named(graded):
    assert [r[2:4] for r in graded if r[0] == 'crash'][0] == ['grad_twice', 'error']
    assert any('crash' in r[4] or 'died' in r[4] for r in graded if r[0] == 'crash')
    bad = [r for r in graded if r[0] == 'notebook']
    assert len(bad) == 1 and bad[0][3] == 'error' and 'notebook.ipynb is not a notebook' in bad[0][4]

def test_a_notebook_that_deletes_files_is_named_and_the_submission_kept(graded):
    own = [r for r in graded if r[0] == 'deleter' and not r[2]]
    assert own and 'my_notes.txt' in own[0][4]
    assert all(r[3] in VERDICTS or (r[3] == '' and r[4] == 'no checked exercise') for r in graded)

def test_a_deleted_check_is_still_graded_against_the_instructors_notebook(graded):
    assert verdicts(graded, 'dropper') == {'ideals_shapes': 'not written', 'is_3_nearest': 'not yet'}

def test_a_wrong_out_is_refused_before_any_notebook_runs(tmp_path, monkeypatch):
    "A class's grading is never lost to a wrong --out: a folder, a missing folder, another file are named first."
    import mnist37.grade as g
    (tmp_path/'class').mkdir(); (tmp_path/'class'/'ana.ipynb').write_text('{}')
    monkeypatch.setattr(g, 'grade_notebook', lambda *a, **k: pytest.fail('a notebook ran before --out was checked'))
    (tmp_path/'mine.csv').write_text('my own notes\n')
    for out, words in [(tmp_path, 'is not a grades table'), (tmp_path/'gone'/'g.csv', 'does not exist'),
                       (tmp_path/'mine.csv', 'is not a grades table')]:
        with pytest.raises(OSError, match=words): g.grade(tmp_path/'class', out, jobs=1)
    assert (tmp_path/'mine.csv').read_text() == 'my own notes\n'
