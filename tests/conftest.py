"Shared fixtures: a private FASTAI_HOME per test, and a synthetic archive shaped like MNIST_SAMPLE."
import ast, functools, io, os, tarfile, threading, time
# The tests often run in parallel processes (pytest-xdist, `-n auto`); one CPU thread each, for them and the processes
# they start, because several PyTorch processes each using every core slow each other down badly.
os.environ.setdefault('OMP_NUM_THREADS', '1')
# The archives below are synthetic (random pixels in MNIST_SAMPLE's layout), not fast.ai's file: let them be installed
# as re-packed copies. Tests of the digest itself remove this variable.
os.environ.setdefault('MNIST37_ALLOW_REPACKED', '1')
from pathlib import Path
import numpy as np
import pytest
from hypothesis import is_hypothesis_test, settings
# Every property test draws the same examples on every run (the seed comes from the test, not the clock), so that CI
# passes or fails on the code alone; a test's own @settings adds to this profile (max_examples, deadline ...).
settings.register_profile('mnist37', derandomize=True)
settings.load_profile('mnist37')
from PIL import Image
from mnist37.datasets.source import EXPECTED

# ---- the `slow` marker: what the inner loop (`pytest -m "not slow"`) leaves to CI
# Marked here rather than in each file, so that one list says what is slow and why. A file name alone marks every test
# in it; (file, test) marks one test function (all its parameters). tests/test_repo.py checks every entry still exists.
SLOW = {
    'test_kernel.py': 'every notebook in a real Jupyter kernel',
    'test_site.py': 'the doc-site preview in headless Chromium',
    'test_terminal.py': 'the CLI on a pseudo-terminal (pty): training and bench as a user types them',
    ('test_student.py', 'test_every_untouched_copy_runs_to_the_end_in_a_real_kernel'): 'every student copy in a real kernel',
    ('test_exercises.py', 'test_function_feedback_on_many_draws'): '100 draws per exercise case',
    ('test_cli.py', 'test_train_all_json_on_the_fallback'): 'trains through the CLI',
    ('test_cli.py', 'test_train_ten_digits_json'): 'trains through the CLI',
    ('test_cli.py', 'test_train_table_says_which_data'): 'trains through the CLI',
    ('test_cli.py', 'test_bench_writes_table_and_plot'): 'the benchmark through the CLI',
    ('test_repo.py', 'test_nbdev_test_skips_slow_and_cuda_cells_unless_asked'): 'runs nbdev_test three times',
    ('test_repo.py', 'test_the_library_runs_without_nbdev'): 'imports every module in a fresh process',
    ('test_safety.py', 'test_own_png_in_the_fallback_folder_is_kept'): 'builds the fallback',
    ('test_safety.py', 'test_a_config_left_broken_by_a_killed_first_run_is_repaired'): 'builds the fallback, four times',
    ('test_safety.py', 'test_cli_runs_after_a_killed_first_run'): 'the CLI builds the fallback in a fresh process',
    ('test_digits.py', 'test_fallback_is_stratified_seeded_and_announced'): "builds the ten-digit fallback",
    ('test_data.py', 'test_unwritable_cache_folder_says_what_to_do'): 'a fresh process in a mount namespace',
    ('test_data.py', 'test_real_archive_gives_the_lessons_counts'): "installs the real MNIST_SAMPLE (14,000 files)",
    ('test_ci.py', 'test_costly_module_fixtures_are_built_once_per_run'): 'pytest with two workers in a fresh process',
}  # and every hypothesis test (a property suite draws up to hundreds of examples)
# Every test that uses one of these fixtures: fake_archive, fake_mnist_archive and bomb build or install a full-size
# archive (14,000 or 70,000 files); env (tests/test_cli.py's, also used by test_reliability.py and test_terminal.py)
# runs the mnist37 command as a person does, a fresh process importing PyTorch for each call (seconds each); graded
# (tests/test_grade.py) grades a class of student copies, each in a real kernel.
SLOW_FIXTURES = {'fake_archive', 'fake_mnist_archive', 'bomb', 'env', 'graded'}

def is_slow(item) -> bool:
    "Whether `item` is in SLOW (by its file, or its file and function), uses a SLOW_FIXTURES fixture or is a property test."
    file, func = Path(str(item.fspath)).name, getattr(item, 'originalname', item.name)
    return (file in SLOW or (file, func) in SLOW or bool(SLOW_FIXTURES & set(getattr(item, 'fixturenames', ())))
            or is_hypothesis_test(getattr(item, 'obj', None)))

@functools.cache
def modules_used(path: Path) -> frozenset:
    "The mnist37 modules a test file imports: `-k linear` then picks the tests of the module 03_linear exports."
    names = set()
    for n in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(n, ast.ImportFrom) and (n.module or '').split('.')[0] == 'mnist37':
            names |= set(n.module.split('.')[1:]) or {a.name for a in n.names}
        elif isinstance(n, ast.Import): names |= {a.name.split('.')[1] for a in n.names if a.name.startswith('mnist37.')}
    return frozenset(names)

# ---- how the whole suite is spread over pytest-xdist's workers (`-n auto`): tests/scheduling.py
from scheduling import ONE_WORKER, one_worker_files, pytest_xdist_make_scheduler  # noqa: F401 (pytest reads the hook here)

@pytest.hookimpl(tryfirst=True)  # before pytest's own -m and -k selection read the marks and keywords
def pytest_collection_modifyitems(config, items):
    for item in items:
        if is_slow(item): item.add_marker(pytest.mark.slow)
        item.extra_keyword_matches.update(modules_used(Path(str(item.fspath))))
    # Slow tests first, the many fast ones (seconds in all) last: xdist hands tests out in this order as workers free up,
    # so the fast ones fill the gaps at the end instead of one worker finishing a long notebook run alone.
    items.sort(key=lambda item: not item.get_closest_marker('slow'))

@pytest.fixture(autouse=True)
def no_checker_thread_left():
    """Every test ends its students' functions: a checker thread left running is still being asked to stop (TooSlow
    every 10 ms), which lands in whatever Python code that thread runs next, a garbage-collector callback of hypothesis
    say, and fails a later test ('Exception ignored in ... gc_callback', seen in CI under test_data.py)."""
    yield
    from mnist37.checks.limits import THREAD
    left = lambda: [t for t in threading.enumerate() if t.name == THREAD]
    deadline = time.monotonic() + 5
    while left() and time.monotonic() < deadline: time.sleep(0.01)
    assert not left(), f"this test left {len(left())} student function(s) running in a '{THREAD}' thread: end them"

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
    from mnist37.datasets.mnist import MNIST
    return make_tarball(dest, 'mnist_png', counts or MNIST.counts, labels=False, seed=1, extra=extra)

@pytest.fixture(scope='session')
def fake_mnist_archive(tmp_path_factory):
    "A complete archive with full MNIST's file counts (70,000 random-pixel PNGs), built once per run."
    return make_mnist_archive(tmp_path_factory.mktemp('mnist_archive')/'mnist_png.tgz')
