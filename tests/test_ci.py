"How CI runs the suite (.ci/run, tests/conftest.py): what it does to save time must not lose a test or leave a process."
import os, re, subprocess, sys, textwrap, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_costly_module_fixtures_are_built_once_per_run(tmp_path):
    "With two xdist workers, a module fixture in ONE_WORKER is built once (xdist's load scheduling built it in each)."
    (tmp_path/'conftest.py').write_text((ROOT/'tests'/'scheduling.py').read_text())   # the hook, without the suite's imports
    (tmp_path/'pytest.ini').write_text('[pytest]\n')
    (tmp_path/'test_x.py').write_text(textwrap.dedent(f'''
        import pytest
        @pytest.fixture(scope='module')
        def graded():
            with open({str(tmp_path/'built')!r}, 'a') as f: f.write('x')
        @pytest.mark.parametrize('i', range(8))
        def test_uses(graded, i): pass
        @pytest.mark.parametrize('i', range(8))
        def test_other(i): pass
        '''))
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-n', '2', '-p', 'no:cacheprovider', str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True)
    assert '16 passed' in r.stdout, r.stdout + r.stderr
    assert (tmp_path/'built').read_text() == 'x'

def background_lines():
    "The lines of .ci/run that start Colab's target in the background, let its notebooks go, and wait for it."
    lines = (ROOT/'.ci'/'run').read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith('colab_dir=$(mktemp -d)'))
    trap = next(i for i in range(start, len(lines)) if lines[i].startswith('trap '))
    go = re.search(r'touch "\$colab_dir/go"', (ROOT/'.ci'/'run').read_text()).group(0)
    wait = next(i for i, l in enumerate(lines) if l.startswith('colab_status=0; wait'))
    return lines[start:trap + 1], go, lines[wait:wait + 5]

def run_ci(tmp_path, tests_fail: bool, build_s: int, colab='echo colab'):
    """.ci/run's background Colab target around nbdev_test (2 s) and a test step that passes or fails; .ci/colab-venv and
    .ci/colab replaced by fakes (the fake .ci/colab says 'too-early' if it starts before nbdev_test has passed)."""
    (tmp_path/'.ci').mkdir(exist_ok=True)
    (tmp_path/'.ci'/'colab-venv').write_text(f'echo building; sleep {build_s} & echo $! > {tmp_path}/sleeper; wait; echo built\n')
    (tmp_path/'.ci'/'colab').write_text(f'[ -e step1 ] || echo too-early\n{colab}\n')
    start, go, wait = background_lines()
    tests = 'sleep 1; false' if tests_fail else 'sleep 1'
    script = '\n'.join(['set -euo pipefail', f'cd {tmp_path}', 'start=$SECONDS', *start, 'sleep 2; touch step1', go, tests, *wait])
    r = subprocess.run(['bash', '-c', script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, 'TMPDIR': str(tmp_path)})   # its mktemp -d folder: here, not in /tmp
    assert not list(tmp_path.glob('tmp.*')), 'CI left its folder for Colab\'s target behind'
    return r

def test_colabs_target_runs_beside_the_tests_after_nbdev_test_and_is_waited_for(tmp_path):
    r = run_ci(tmp_path, tests_fail=False, build_s=0)
    assert r.returncode == 0 and r.stdout.split()[:3] == ['building', 'built', 'colab'], r.stdout + r.stderr
    assert "CI: Colab's target passed" in r.stdout.splitlines()[-1]

def test_a_failing_colab_target_fails_ci(tmp_path):
    r = run_ci(tmp_path, tests_fail=False, build_s=0, colab='echo colab; exit 3')
    assert r.returncode == 3 and "CI: FAILED: Colab's target" in r.stdout, r.stdout + r.stderr

def test_a_failing_ci_stops_colabs_venv_build(tmp_path):
    r = run_ci(tmp_path, tests_fail=True, build_s=60)
    assert r.returncode != 0 and 'colab' not in r.stdout, r.stdout
    pid = int((tmp_path/'sleeper').read_text())
    for _ in range(50):
        if not running(pid): break
        time.sleep(0.1)
    assert not running(pid), 'the background build went on after CI stopped'

def running(pid: int) -> bool:
    "Whether process `pid` still runs: a zombie has ended, and so has one that is gone, even between two reads of /proc."
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError: return False   # ProcessLookupError (gone while read) and FileNotFoundError (gone before) alike

def test_running_tells_a_live_process_from_a_zombie_and_a_gone_one():
    p = subprocess.Popen(['sleep', '30'])
    try: assert running(p.pid)
    finally: p.kill()
    deadline = time.monotonic() + 10
    while running(p.pid) and time.monotonic() < deadline: time.sleep(0.05)   # killed, not yet waited for: a zombie
    assert Path(f'/proc/{p.pid}').exists() and not running(p.pid)
    p.wait(); assert not running(p.pid)

def need_lines():
    "The lines of .ci/run that work out how many GB of room CI needs, before anything is installed."
    return [l for l in (ROOT/'.ci'/'run').read_text().splitlines() if l.startswith('need_gb=')]

def test_ci_stops_first_and_says_so_when_the_disk_has_no_room(tmp_path):
    "Not pip's 'No space left on device' halfway through an install: the folder, the room there and what to free."
    (tmp_path/'.ci').mkdir(); (tmp_path/'.ci'/'run').write_text((ROOT/'.ci'/'run').read_text())
    r = subprocess.run(['bash', str(tmp_path/'.ci'/'run')], capture_output=True, text=True, timeout=60,
                       env={**os.environ, 'MNIST37_CI_NEED_GB': str(10**9), 'TMPDIR': str(tmp_path)})
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith(f'CI: not enough room on the disk of {tmp_path}: ') and 'pip cache purge' in r.stdout, r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.ci'], 'CI went on after saying it had no room'

def test_ci_asks_for_room_only_for_the_venvs_it_has_yet_to_build(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'MNIST37_CI_NEED_GB'}
    need = lambda: subprocess.run(['bash', '-c', '\n'.join(['set -euo pipefail', *need_lines(), 'echo $need_gb'])], cwd=tmp_path,
                                  capture_output=True, text=True, env=env).stdout.split()
    assert need() == ['15']                     # a fresh clone: both venvs and pip's unpacking
    (tmp_path/'.venv').mkdir(); assert need() == ['8']
    (tmp_path/'.venv-colab').mkdir(); assert need() == ['2']
