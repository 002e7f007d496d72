"""What a student reads in every lesson notebook (the ones a student copy is made of): few visible checks, one name for folded answers, short exported
cells, no unexplained NaN in a table, and an exercises intro that survives the student copy (issue 19)."""
import json, re
from pathlib import Path
import pytest

from mnist37.student import STUDENT_NOTEBOOKS

NBS = Path(__file__).parent.parent/'nbs'
MINE = list(STUDENT_NOTEBOOKS)
MOSTLY_CHECKS = {'05a_review': 0}   # the most visible mostly-check cells a notebook may have; 4 where not named

def cells(name): return json.loads((NBS/f'{name}.ipynb').read_text())['cells']
def src(c): return ''.join(c['source'])
def code_lines(s): return [l for l in s.splitlines() if l.strip() and not l.lstrip().startswith('#')]
CHECK = re.compile(r'(^|;)\s*(assert\b|test_\w+\()')

def mostly_checks(name):
    "Visible code cells (no `#| hide`) whose code lines are at least half `assert`/`test_*` lines."
    found = []
    for c in cells(name):
        s = src(c)
        if c['cell_type'] != 'code' or re.search(r'^#\|\s*hide', s, re.M): continue
        lines = code_lines(s)
        if lines and 2*sum(bool(CHECK.search(l)) for l in lines) >= len(lines): found.append(c['id'])
    return found

@pytest.mark.parametrize('name', MINE)
def test_few_visible_check_cells(name):
    assert len(mostly_checks(name)) <= MOSTLY_CHECKS.get(name, 4), mostly_checks(name)

@pytest.mark.parametrize('name', MINE)
def test_every_folded_answer_is_a_model_answer(name):
    summaries = [m for c in cells(name) if c['cell_type'] == 'markdown' for m in re.findall(r'<summary>(.*?)</summary>', src(c))]
    assert all(s == 'A model answer' for s in summaries), sorted(set(summaries))

@pytest.mark.parametrize('name', MINE)
def test_exported_cells_are_at_most_15_lines(name):
    long = [(c['id'], n) for c in cells(name) if c['cell_type'] == 'code' and re.search(r'^#\|\s*export', src(c), re.M)
            and (n := len(code_lines(src(c)))) > 15]
    assert not long, long

# Python a student meets in a visible cell and the lesson never explains (each was found there and rewritten plainly)
UNTAUGHT = {':=': 'the walrus', '-(-': 'ceiling division by negation', ' or iter)(': 'calling `a or b`',
            'for self.': 'an attribute as a loop variable', '][-1][-1]': 'chained indexing'}

@pytest.mark.parametrize('name', MINE)
def test_visible_cells_use_no_untaught_idiom(name):
    found = [(c['id'], why) for c in cells(name) if c['cell_type'] == 'code' and not re.search(r'^#\|\s*hide', src(c), re.M)
             for idiom, why in UNTAUGHT.items() if idiom in src(c)]
    assert not found, found

def test_the_results_table_of_05_shows_no_nan():
    "The baseline is never trained: its epochs and learning rate read '-', not NaN."
    table = next(c for c in cells('05_neural_net') if 'wrong images' in src(c) and 'rows = [' in src(c))
    text = ''.join(''.join(o.get('data', {}).get('text/plain', [])) for o in table['outputs'])
    assert 'pixel similarity' in text and 'NaN' not in text and not re.search(r'pixel similarity\s+0\s+1568\s+0\b', text), text

WITH_EXERCISES = [n for n in MINE if any(src(c).startswith('## Exercise') for c in cells(n))]

@pytest.mark.parametrize('name', WITH_EXERCISES)
def test_the_exercises_intro_survives_the_student_copy(name, tmp_path):
    "The copier drops sentences for instructors: the intro under '## Exercises' (10: '## Exercise') must still say how the exercises work."
    from mnist37.student import student_copy
    out = student_copy(NBS/f'{name}.ipynb', tmp_path)
    md = next(src(c) for c in json.loads(out.read_text())['cells'] if src(c).startswith('## Exercise'))
    intro = md.split('**1.**')[0].replace('## Exercises', '').replace('## Exercise', '').strip()
    assert len(intro.split()) >= 20 and 'check' in intro, repr(intro)

def test_most_lesson_notebooks_have_exercises():
    assert len(WITH_EXERCISES) >= 8, WITH_EXERCISES

LINE_LIMIT = 120   # about what JupyterLab shows without sideways scrolling at a usual width

def long_lines(name, limit=LINE_LIMIT):
    "(cell id, length) of every line over `limit` characters in a visible code cell (exported ones included)."
    return [(c['id'], len(l)) for c in cells(name) if c['cell_type'] == 'code' and not re.search(r'^#\|\s*hide', src(c), re.M)
            for l in src(c).splitlines() if len(l) > limit]

@pytest.mark.parametrize('name', MINE)
def test_no_visible_code_line_is_too_long_to_read(name):
    assert not long_lines(name), long_lines(name)
