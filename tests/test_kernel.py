"""Every notebook, top to bottom, in a real Jupyter kernel (tools/kernel.py), on the bundled fallback data: every cell
runs (`#| slow` ones too), and an exception, a warning or anything on stderr fails the notebook. pytest-xdist spreads
the notebooks over its workers; each kernel uses one thread.

The full data set is not run again here: `nbdev_test` (in .ci/run) runs every notebook on it, and .ci/colab runs every
notebook in a real kernel on it (slow cells included), in Colab's own stack."""
import pytest
from kernel import data_env, notebooks, run_notebook

@pytest.fixture(scope='session')
def fallback_home(tmp_path_factory):
    "One empty fastai home for every fallback kernel of this run (the first one builds the fallback, under a lock)."
    return str(tmp_path_factory.mktemp('kernel_home'))

@pytest.mark.parametrize('nb', notebooks(), ids=lambda p: p.stem)
def test_notebook_in_a_real_kernel(nb, fallback_home, tmp_path):
    "Every cell runs without an error, a warning or stderr, and the notebook leaves nothing in the temp folder."
    (tmp_path/'tmp').mkdir()
    secs, found = run_notebook(nb, {**data_env('fallback', fallback_home), 'TMPDIR': str(tmp_path/'tmp')})
    print(f'{nb.name} (fallback): {secs:.1f} s')
    assert not found, '\n'.join(found)
    left = sorted(p.name for p in (tmp_path/'tmp').iterdir() if not p.name.startswith('torchinductor_'))  # PyTorch's cache, kept by name
    assert not left, f"{nb.name} left {left} in the temp folder: a demo's folders must be removed by the notebook's end"

def test_the_kernel_run_runs_slow_cells_and_sees_errors_and_stderr(tmp_path):
    "What nbdev_test skips (`#| slow`) runs here; an exception or anything on stderr fails the notebook."
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    def run(*cells):
        f = tmp_path/'t.ipynb'; nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), f)
        return run_notebook(f, data_env('fallback', str(tmp_path/'home')))[1]
    assert run('x = 1', 'print(x)') == []
    assert run('#| slow\nraise RuntimeError("the slow cell ran")')[0].endswith('RuntimeError: the slow cell ran')
    assert 'wrote to stderr: careful' in run('import sys; print("careful", file=sys.stderr)')[0]
    assert 'UserWarning: odd' in run('import warnings; warnings.warn("odd")')[0]

def test_the_lesson_is_the_sidebars_student_sections(tmp_path):
    "`kernel.py --lesson` (Colab's run): the notebooks a student works through, no instructor's tool, none missing."
    import json, re
    from kernel import lesson_notebooks, NBS
    lesson = lesson_notebooks()
    assert {p.name for p in lesson} >= {'00_data.ipynb', '05_neural_net.ipynb', '10_learner.ipynb', '11_all_digits.ipynb'}
    assert all(p.exists() for p in lesson), [p for p in lesson if not p.exists()]
    exports = lambda p: re.findall(r'#\| default_exp (\S+)', '\n'.join(''.join(c['source']) for c in json.loads(p.read_text())['cells']))
    tools = {p.name: m for p in lesson for m in exports(p) if m.split('.')[0] in ('checks', 'datasets', 'grade', 'student', 'cli')}
    assert not tools, f'instructors\' tools in the lesson: {tools}'
    (tmp_path/'sidebar.yml').write_text((NBS/'sidebar.yml').read_text().replace('section: The lesson', 'section: Lesson one'))
    with pytest.raises(ValueError, match=r"sidebar\.yml has no section 'The lesson'"): lesson_notebooks(tmp_path)
