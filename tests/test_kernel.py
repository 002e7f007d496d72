"""Every notebook, top to bottom, in a real Jupyter kernel (tests/kernel.py), on the fallback data and on the full
data where this machine has it. pytest-xdist spreads the notebooks over its workers; each kernel uses one thread."""
import os
from pathlib import Path
import pytest
from kernel import data_env, notebooks, run_notebook
from mnist37.data import find_mnist_sample

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
