"Shared fixtures: a private FASTAI_HOME per test, and a synthetic archive shaped like MNIST_SAMPLE."
import io, os, tarfile
# The tests run in parallel processes (pytest-xdist); one CPU thread each, for them and the processes they start,
# because several PyTorch processes each using every core slow each other down badly.
os.environ.setdefault('OMP_NUM_THREADS', '1')
# The archives below are synthetic (random pixels in MNIST_SAMPLE's layout), not fast.ai's file: let them be installed
# as re-packed copies. Tests of the digest itself remove this variable.
os.environ.setdefault('MNIST37_ALLOW_REPACKED', '1')
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from mnist37.source import EXPECTED

SHARED_ARCHIVE = Path(__file__).resolve().parents[1].parent/'shared'/'data'/'mnist_sample.tgz'

@pytest.fixture
def home(tmp_path, monkeypatch):
    "An empty fastai home for this test only; offline, with no archive configured."
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path/'fastai_home'))
    monkeypatch.setenv('MNIST37_OFFLINE', '1')
    monkeypatch.delenv('MNIST37_ARCHIVE', raising=False)
    return tmp_path/'fastai_home'

def png_bytes(img) -> bytes:
    buf = io.BytesIO(); Image.fromarray(img).save(buf, format='PNG'); return buf.getvalue()

def add_bytes(tf, name, data):
    info = tarfile.TarInfo(name); info.size = len(data); tf.addfile(info, io.BytesIO(data))

def make_tarball(dest: Path, top: str, counts: dict, labels=True, seed=0, extra=()):
    "A gzip tarball: `counts` noise PNGs per folder under `top/` (no MNIST image), labels.csv if `labels`, `extra`."
    rng = np.random.default_rng(seed)
    pngs = [png_bytes(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(16)]
    with tarfile.open(dest, 'w:gz', compresslevel=1) as tf:
        rows = ['name,label']
        for folder, n in counts.items():
            for i in range(n):
                add_bytes(tf, f'{top}/{folder}/{i}.png', pngs[i % 16])
                rows.append(f'{folder}/{i}.png,{int(folder.endswith("7"))}')
        if labels: add_bytes(tf, f'{top}/labels.csv', ('\n'.join(rows) + '\n').encode())
        for info, data in extra: tf.addfile(info, io.BytesIO(data) if data else None)
    return dest

def make_archive(dest: Path, counts=EXPECTED, extra=()):
    "A gzip tarball in MNIST_SAMPLE's layout, `counts` random noise PNGs per folder (no MNIST image), and labels.csv."
    return make_tarball(dest, 'mnist_sample', counts, labels=True, seed=0, extra=extra)

@pytest.fixture(scope='session')
def fake_archive(tmp_path_factory):
    "A complete archive with the full data set's file counts (random pixels), built once per run."
    return make_archive(tmp_path_factory.mktemp('archive')/'mnist_sample.tgz')

def make_mnist_archive(dest: Path, counts=None, extra=()):
    "A gzip tarball in full MNIST's layout (mnist_png/training/0..9, testing/0..9), `counts` noise PNGs per folder."
    from mnist37.digits_data import MNIST
    return make_tarball(dest, 'mnist_png', counts or MNIST.counts, labels=False, seed=1, extra=extra)

@pytest.fixture(scope='session')
def fake_mnist_archive(tmp_path_factory):
    "A complete archive with full MNIST's file counts (70,000 random-pixel PNGs), built once per run."
    return make_mnist_archive(tmp_path_factory.mktemp('mnist_archive')/'mnist_png.tgz')
