"""Every notebook, top to bottom, in a real Jupyter kernel (tests/kernel.py), on the fallback data and on the full
data where this machine has it. pytest-xdist spreads the notebooks over its workers; each kernel uses one thread."""
import os
from pathlib import Path
import pytest
from kernel import data_env, notebooks, run_notebook
from mnist37.source import find_mnist_sample

def full_data_here() -> bool:
    "Whether the caller's fastai home holds the full MNIST_SAMPLE, or an archive to install it from is configured."
    if os.getenv('MNIST37_ARCHIVE'): return True
    try: return find_mnist_sample().full
    except Exception: return False

@pytest.fixture(scope='session')
def fallback_home(tmp_path_factory):
    "One empty fastai home for every fallback kernel of this run (the first one builds the fallback, under a lock)."
    return str(tmp_path_factory.mktemp('kernel_home'))

@pytest.mark.parametrize('nb', notebooks(), ids=lambda p: p.stem)
@pytest.mark.parametrize('data', ['fallback', 'full'])
def test_notebook_in_a_real_kernel(nb, data, fallback_home):
    if data == 'full' and not full_data_here(): pytest.skip('no full MNIST_SAMPLE here (set MNIST37_ARCHIVE)')
    secs, found = run_notebook(nb, data_env(data, fallback_home))
    print(f'{nb.name} ({data}): {secs:.1f} s')
    assert not found, '\n'.join(found)

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
