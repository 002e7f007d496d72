"The mnist37 command as a user meets it: help, wrong calls (exit 2), the main job, data and bench."
import json, os, re, shutil, subprocess, sys
import pytest
from mnist37.recipes import MODELS

@pytest.fixture(scope='module')
def env(tmp_path_factory):
    "A fastai home holding the fallback data (built once for this module), offline."
    home = tmp_path_factory.mktemp('cli_home')
    e = {**os.environ, 'FASTAI_HOME': str(home), 'MNIST37_OFFLINE': '1', 'MNIST37_ARCHIVE': ''}
    e.pop('MNIST37_DEVICE', None)
    subprocess.run([sys.executable, '-c', 'from mnist37.datasets.source import build_fallback; build_fallback()'], env=e, check=True)
    return e

MNIST37 = shutil.which('mnist37', path=os.path.dirname(sys.executable)) or shutil.which('mnist37')

def cli(*args, env=None):
    "Run the installed `mnist37` command, as a user would."
    assert MNIST37, 'the mnist37 command is not installed: pip install -e .'
    return subprocess.run([MNIST37, *args], env=env, capture_output=True, text=True, timeout=600)

def test_help_is_quick_and_imports_no_torch():
    r = subprocess.run([sys.executable, '-c', 'import sys; from mnist37.cli import parser; parser().format_help(); '
                        'print(sorted(m for m in ("torch", "fastai") if m in sys.modules))'], capture_output=True, text=True)
    assert r.stdout.strip() == '[]'
    r = cli('--help')
    assert r.returncode == 0 and 'train' in r.stdout and 'bench' in r.stdout

@pytest.mark.parametrize('args,match', [
    (['fly'], "invalid choice: 'fly'"), (['train', '--model', 'cnn'], "invalid choice: 'cnn'"),
    (['train', '--epochs', '-3'], 'must be at least 1, got -3'), (['train', '--epochs', 'ten'], "'ten' is not a whole number"),
    (['train', '--lr', '0'], 'must be greater than 0'), (['train', '--device', 'tpu'], "unknown device 'tpu'"),
    (['train', '--seed', '-1'], 'argument --seed: must be at least 0, got -1'), ([], 'required'),
    (['train', '--device', 'cpu:x'], "after ':' comes a device number"), (['bench', '--device', 'mps:1'], "'mps:1'"),
    (['train', '--device', 'cpu:1'], "only one cpu device"), (['train', '--lr', 'nan'], "'nan' is not a finite number"),
    (['train', '--lr', '1e999'], "'1e999' is not a finite number"), (['train', '--epochs', '20000'], 'at most 10000'),
    (['train', '--seed', str(2**32)], 'at most 4294967295'), (['bench', '--out', __file__], f'--out {__file__} is a file, not a folder'),
    (['student', '--out', __file__ + '/x'], f'--out {__file__}/x is a path through a file, not a folder'),
    (['data', '--archive', os.path.dirname(__file__)], f'--archive {os.path.dirname(__file__)} is a folder, not a file'),
    (['train', '--device', 'cpu:00'], "device 'cpu:00': after ':' comes a device number"),
    (['train', '--model', 'linear', '--epochs', '1', '--lr', '1e300'], '--lr 1e+300: predictions contain NaN')])
def test_wrong_calls_get_usage_and_exit_2(args, match, env):
    r = cli(*args, env=env)
    assert r.returncode == 2, r.stderr
    assert '(`mnist37' in r.stderr and '--help` shows every option)' in r.stderr and match in r.stderr and 'Traceback' not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2, r.stderr  # what is wrong, and where to see the options

def test_forced_missing_gpu_is_named(env):
    import torch
    if torch.cuda.is_available():  # a GPU machine: ask for one more CUDA device than it has
        n = torch.cuda.device_count()
        r = cli('train', '--device', f'cuda:{n}', env=env)
        assert r.returncode == 2 and f'this machine has {n} CUDA device(s)' in r.stderr
    else:
        r = cli('train', '--device', 'cuda', env=env)
        assert r.returncode == 2 and 'this machine has no CUDA' in r.stderr
    r = cli('train', '--device', 'cuda:9', env={**env, 'MNIST37_DEVICE': 'cpu'})
    assert r.returncode == 2 and "'cuda:9'" in r.stderr
    r = cli('train', env={**env, 'MNIST37_DEVICE': 'cuda:9'})  # the variable is named, so a person knows where it came from
    assert r.returncode == 2 and "MNIST37_DEVICE='cuda:9'" in r.stderr and 'Traceback' not in r.stderr

def expected_device(env):
    "The device `mnist37` picks by itself in `env`, on whatever machine runs the tests (cpu, cuda or mps)."
    code = 'from mnist37.device import get_device; print(get_device())'
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True).stdout.strip()

def test_train_all_json_on_the_fallback(env):
    r = cli('train', '--json', '--epochs', '3', env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row['model'] for row in rows] == ['baseline', 'linear', 'optim', 'net']
    device = expected_device(env)
    assert all(row['data'] == 'fallback' and row['device'] == device for row in rows)
    assert rows[0]['accuracy'] > 0.85 and rows[0]['lesson'] == MODELS['baseline'][3]  # the lesson's own figure
    assert all(0.5 < row['accuracy'] <= 1 for row in rows) and [row['epochs'] for row in rows] == [0, 3, 3, 3]

def test_train_json_installing_an_archive_keeps_stdout_json(tmp_path, fake_archive, env):
    r = cli('train', '--json', '--model', 'baseline', '--archive', str(fake_archive), env={**env, 'FASTAI_HOME': str(tmp_path/'h')})
    assert r.returncode == 0 and f'Installing {fake_archive}' in r.stderr, r.stderr
    assert json.loads(r.stdout)[0]['data'] == 'full', r.stdout

def test_train_ten_digits_json(env):
    r = cli('train', '--json', '--model', 'digits-linear', '--epochs', '2', env=env)
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert row['model'] == 'digits-linear' and row['data'] == 'fallback' and row['lesson'] is None and row['epochs'] == 2  # not the lesson's 20 epochs: no figure to compare
    assert 0.5 < row['accuracy'] <= 1  # ten classes: chance is 0.1
    r = cli('train', '--model', 'digits', '--mnist-archive', '/nowhere/mnist_png.tgz', env=env)
    assert r.returncode == 2 and '--mnist-archive /nowhere/mnist_png.tgz does not exist' in r.stderr, r.stderr

def test_train_table_says_which_data(env):
    r = cli('train', '--model', 'baseline', env=env)
    assert r.returncode == 0, r.stderr
    assert 'OFFLINE FALLBACK' in r.stdout and 'baseline' in r.stdout and 'lesson' in r.stdout.splitlines()[2]

def test_data_command(env, tmp_path, fake_archive):
    r = cli('data', '--archive', str(tmp_path/'missing.tgz'), env={**env, 'FASTAI_HOME': str(tmp_path/'h')})
    assert r.returncode == 2 and 'missing.tgz does not exist' in r.stderr and 'Traceback' not in r.stderr
    r = cli('data', '--archive', str(fake_archive), env={**env, 'FASTAI_HOME': str(tmp_path/'h')})
    assert r.returncode == 0 and 'the full MNIST_SAMPLE from archive' in r.stdout and 'train/3: 6131' in r.stdout
    assert r.stdout.startswith(f'Installing {fake_archive} into '), r.stdout   # said before the seconds it takes, not after
    for cmd in (['data'], ['train', '--model', 'baseline']):   # installed now: a named archive is not read again, and that is said
        r = cli(*cmd, '--archive', str(fake_archive), env={**env, 'FASTAI_HOME': str(tmp_path/'h')})
        assert r.returncode == 0 and f'--archive {fake_archive} was not read: the full MNIST_SAMPLE is already in ' in r.stdout, r.stdout

def test_bench_writes_table_and_plot(env, tmp_path):
    r = cli('bench', '--epochs', '1', '--out', str(tmp_path/'b'), env=env)
    assert r.returncode == 0, r.stderr
    md = (tmp_path/'b'/'bench.md').read_text()
    assert 'fastai Learner, book loss / fast path' in md and "lesson's checked loss / fast path" in md
    assert 'PNG decode / tensor cache' in md and md.count('x |') >= 5
    assert (tmp_path/'b'/'bench.png').read_bytes()[:4] == b'\x89PNG'

def test_student_refuses_the_sources_and_others_files_unless_forced(env, tmp_path):
    nbs = os.path.join(os.path.dirname(__file__), '..', 'nbs')
    r = cli('student', '--nbs', nbs, '--out', nbs, env=env)
    assert r.returncode == 1 and 'refusing to write student copies' in r.stderr and 'Traceback' not in r.stderr
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('my notes')
    r = cli('student', '--nbs', nbs, '--out', str(tmp_path/'mine'), env=env)
    assert r.returncode == 1 and 'notes.txt' in r.stderr and '--force' in r.stderr and 'force=True' not in r.stderr
    r = cli('student', '--nbs', nbs, '--out', str(tmp_path/'mine'), '--force', env=env)
    assert r.returncode == 0 and (tmp_path/'mine'/'notes.txt').read_text() == 'my notes'  # kept, never deleted
    assert len(list((tmp_path/'mine').glob('*.ipynb'))) >= 10

# ---- Rough edges a new user met (issue 21): each of these failed on the command before the fix

def in_process(argv, env, monkeypatch, stdout=None):
    "Run `mnist37 argv` here with `train_recipe` replaced by an instant stand-in; return (status, stdout, stderr, trained)."
    import io, mnist37.cli, mnist37.recipes
    from mnist37.cli import main
    for k, v in env.items(): monkeypatch.setenv(k, v)
    trained = []
    instant = lambda name, *a, **k: trained.append(name) or 0.9  # a stand-in for the training
    monkeypatch.setattr(mnist37.recipes, 'train_recipe', instant)
    out, err = stdout or io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, 'stdout', out); monkeypatch.setattr(sys, 'stderr', err)
    try: main(argv); status = 0
    except SystemExit as e: status = e.code if isinstance(e.code, int) else 1
    return status, out.getvalue(), err.getvalue(), trained

def test_the_baselines_show_no_epochs_or_lr(env, monkeypatch):
    "The table showed epochs 0 and lr 0.0 for the baseline, which trains nothing."
    status, out, err, _ = in_process(['train'], env, monkeypatch)
    assert status == 0, err
    rows = {l.split()[0]: l.split() for l in out.splitlines()[3:7]}
    assert rows['baseline'][-5:-3] == ['-', '-'], out  # epochs, lr
    assert all(rows[m][-5:-3] == [str(MODELS[m][1]), str(MODELS[m][2])] for m in ('linear', 'net')), out  # each recipe's own
    assert 'the baselines train nothing' in out

def test_the_note_speaks_only_of_the_models_in_the_table(env, monkeypatch):
    "New-user review: `--model linear` ended with a note on the baselines and all ten digits."
    status, out, err, _ = in_process(['train', '--model', 'linear', '--epochs', '1'], env, monkeypatch)
    note = out.strip().splitlines()[-1]
    assert status == 0 and note.startswith('lesson: ') and "'-' where you changed" in note, out
    assert 'baseline' not in note and 'ten digits' not in note, note

@pytest.mark.parametrize('argv,lines', [(['train'], 3), (['train', '--json'], 1), (['train', '--model', 'net'], 3)])
def test_a_reader_that_has_gone_stops_the_training(env, monkeypatch, argv, lines):
    "`mnist37 train | head -1` trained every model before its one write at the end found the pipe closed."
    import errno, io
    class Gone(io.StringIO):  # the reader leaves after `lines` lines, as `| head -n` does
        def write(self, s):
            if s and self.getvalue().count('\n') >= lines: raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
            return super().write(s)
    status, out, err, trained = in_process(argv, env, monkeypatch, Gone())
    assert trained == argv[2:] or trained == ['baseline'], trained  # stopped at the first row it could not write
    assert status == 1 and err == '', (status, err)  # quietly, as for any closed pipe

def test_train_prints_each_row_as_soon_as_it_is_trained(env, monkeypatch):
    "What the reader has seen when the second model starts: the first model's row, already."
    import io, mnist37.cli, mnist37.recipes
    seen = io.StringIO()
    def instant(name, *a, **k):
        seen.write(f'--- {name} starts after: ' + (sys.stdout.getvalue().splitlines() or [''])[-1] + '\n'); return 0.9
    for k, v in env.items(): monkeypatch.setenv(k, v)
    monkeypatch.setattr(mnist37.recipes, 'train_recipe', instant)
    monkeypatch.setattr(sys, 'stdout', io.StringIO())
    from mnist37.cli import main
    main(['train', '--json'])
    out = sys.stdout.getvalue()
    assert [l.split(': ', 1)[1].strip() for l in seen.getvalue().splitlines()] == ['[', '},', '},', '},'], seen.getvalue()
    assert json.loads(out) == json.loads(json.dumps(json.loads(out), indent=1))  # the JSON is still whole and valid
    assert len(json.loads(out)) == 4

def test_the_student_refusal_names_the_commands_switch(tmp_path, env, monkeypatch):
    "It said 'use --force (force=True)': the Python spelling, which a person at the shell cannot use."
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('my notes')
    nbs = os.path.join(os.path.dirname(__file__), '..', 'nbs')
    status, out, err, _ = in_process(['student', '--nbs', nbs, '--out', str(tmp_path/'mine')], env, monkeypatch)
    assert status == 1 and 'notes.txt' in err and 'or use --force to replace' in err and 'force=True' not in err, err
    assert (tmp_path/'mine'/'notes.txt').read_text() == 'my notes' and not list((tmp_path/'mine').glob('*.ipynb'))

def test_train_help_says_what_all_leaves_out(env, monkeypatch):
    status, out, err, _ = in_process(['train', '--help'], env, monkeypatch)
    text = re.sub(r'(?<=\w-) ', '', ' '.join(out.split()))  # argparse may wrap a line after a hyphen
    assert status == 0 and "all (the default) trains the lesson's four on the 3s and 7s" in text, text
    assert 'which all leaves out: digits-baseline, digits-linear, digits' in text, text
