"""How the whole suite is spread over pytest-xdist's workers (`-n auto`); tests/conftest.py imports the hook. A file of
its own, importing nothing costly, so that tests/test_ci.py can run it in a nested pytest in seconds."""
import ast, functools
from pathlib import Path
import pytest

# A module-scoped fixture is built once in every worker that runs a test using it. These are costly enough that every
# test of a file where a test takes one of them goes to a single worker: graded grades a class in real kernels (about
# 12 notebooks and a copy that hangs until the 60 s limit), env builds the fallback in a fresh process. With `-n 2`
# each used to be built twice. (xdist's own `--dist loadgroup` does not group under pytest 9: it renames node ids.)
ONE_WORKER = {'graded', 'env'}

@functools.cache
def one_worker_files(folder: Path = Path(__file__).parent) -> frozenset:
    "The test files in `folder` with a test function that takes one of the ONE_WORKER fixtures."
    def takes(f):
        return any(isinstance(n, ast.FunctionDef) and n.name.startswith('test_') and ONE_WORKER & {a.arg for a in n.args.args}
                   for n in ast.walk(ast.parse(f.read_text())))
    return frozenset(f.name for f in sorted(folder.glob('test_*.py')) if takes(f))

@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook; without workers it is never called
def pytest_xdist_make_scheduler(config, log):
    "xdist's load scheduling, test by test, except that each of one_worker_files() goes whole to one worker."
    if config.getvalue('dist') != 'load': return None   # a --dist given by hand is kept
    from xdist.scheduler import LoadScopeScheduling
    files = one_worker_files()
    class OneWorkerPerFile(LoadScopeScheduling):       # it hands out the biggest units first, then the rest in order
        def _split_scope(self, nodeid): return nodeid.split('::')[0] if Path(nodeid.split('::')[0]).name in files else nodeid
    return OneWorkerPerFile(config, log)
