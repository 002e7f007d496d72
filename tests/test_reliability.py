"""Issue 22 for the command line, the data machinery and the device: one case per defect a careless or hostile user met
(each failed before the fix), run from the outside as a person meets it. The general, drawn tests are in
test_cli_property.py (every sub-command, streams that are closed or fail, every kind of path and switch)."""
import os, re, struct, subprocess, sys, tarfile, zlib
from pathlib import Path
import pytest
from test_cli import MNIST37, cli, env  # noqa: F401  (env: a fastai home with the fallback data, offline)

def sh(command, env):
    "Run a bash command line with `$M` standing for the mnist37 command; return (exit status, stdout, stderr)."
    r = subprocess.run(['bash', '-c', command], env={**env, 'M': MNIST37}, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout, r.stderr

def here(argv, env, monkeypatch, capsys):
    "Run `mnist37 argv` in this process in `env` (faster than a new one; the same code); return (status, stdout, stderr)."
    from mnist37.cli import main
    for k, v in env.items(): monkeypatch.setenv(k, v)
    monkeypatch.chdir(Path(__file__).parents[1])
    capsys.readouterr()
    try: main(argv); status, said = 0, ''
    except SystemExit as e: status, said = (e.code, '') if isinstance(e.code, int) else (1, f'{e.code}\n')
    out, err = capsys.readouterr()
    return status, out, err + said

def one_line(err):
    "The single line a command ended with: no traceback, nothing else."
    assert 'Traceback' not in err and 'Exception ignored' not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('mnist37'), err
    return lines[0]

# ---- 1. Streams: a stdout that is closed, full or gone; a stderr that is closed

@pytest.mark.parametrize('command', ['train --model baseline', 'data', 'student --nbs nbs --out "$T/s"', '--help'])
def test_a_closed_stdout_ends_with_one_line(env, tmp_path, command):
    "`mnist37 train >&-` ended in AttributeError: 'NoneType' object has no attribute 'isatty'; `data` the same on flush."
    status, _, err = sh(f'cd {Path(__file__).parents[1]} && T={tmp_path} && "$M" {command} >&-', env)
    assert status == 1 and 'standard output is closed' in one_line(err), (status, err)
    assert not (tmp_path/'s').exists()  # stopped before any work: nothing written for a result nobody sees

@pytest.mark.parametrize('command', ['data', 'train --model baseline --json', '--help'])
def test_a_full_disk_ends_with_one_line(env, command):
    status, _, err = sh(f'"$M" {command} > /dev/full', env)
    assert status == 1 and 'cannot write to standard output (No space left on device)' in one_line(err), err

def test_a_program_with_no_stdout(env):
    "A program that starts the command with no stdout at all: Python sets sys.stdout to None."
    code = 'import os, subprocess, sys; os.close(1); sys.exit(subprocess.run(sys.argv[1:]).returncode)'
    r = subprocess.run([sys.executable, '-c', code, MNIST37, 'data'], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and 'standard output is closed' in one_line(r.stderr), r.stderr

@pytest.mark.parametrize('command,status', [('data', 0), ('train --device tpu', 2), ('data --archive /nowhere.tgz', 2)])
def test_a_closed_or_full_stderr_changes_nothing_but_the_message(env, command, status):
    for where in ['2>&-', '2>/dev/full']:
        got, out, _ = sh(f'"$M" {command} {where}', env)
        assert got == status and ('OFFLINE FALLBACK' in out) == (status == 0), (where, got, out)

def test_a_reader_that_stops_early_ends_it_quietly(env):
    status, out, err = sh('"$M" data | head -c 10; echo " status=${PIPESTATUS[0]}"', env)
    assert out.startswith('3s and 7s ') and out.split('status=')[1].strip() in ('0', '1') and err == '', (out, err)

# ---- 2. Paths a person names: said what they are, "does not exist" only of what does not exist

@pytest.fixture
def odd(tmp_path):
    "A folder, a file, a symlink loop, a link to nothing, a fifo."
    (tmp_path/'folder').mkdir(); (tmp_path/'file.txt').write_text('mine')
    (tmp_path/'loop').symlink_to(tmp_path/'loop'); (tmp_path/'gone').symlink_to(tmp_path/'nowhere')
    os.mkfifo(tmp_path/'fifo')
    return tmp_path

@pytest.mark.parametrize('args,says', [
    (['data', '--archive', '{t}/folder'], '--archive {t}/folder is a folder, not a file'),
    (['data', '--mnist-archive', '{t}/folder'], '--mnist-archive {t}/folder is a folder, not a file'),
    (['data', '--archive', '{t}/loop'], '--archive {t}/loop is a symlink loop, not a file'),
    (['data', '--archive', '{t}/gone'], '--archive {t}/gone is a link whose target is missing, not a file'),
    (['data', '--archive', '{t}/fifo'], '--archive {t}/fifo is a device or other special file'),
    (['data', '--archive', '{t}/nowhere.tgz'], '--archive {t}/nowhere.tgz does not exist'),
    (['train', '--archive', '{t}/file.txt/x'], '--archive {t}/file.txt/x is a path through a file, not a file'),
    (['student', '--nbs', 'nbs', '--out', '{t}/loop'], '--out {t}/loop is a symlink loop, not a folder'),
    (['student', '--nbs', '{t}/file.txt', '--out', '{t}/s'], '--nbs {t}/file.txt is a file, not a folder'),
    (['student', '--nbs', '{t}/nope', '--out', '{t}/s'], '--nbs {t}/nope does not exist'),
    (['bench', '--out', '{t}/loop/b'], '--out {t}/loop/b is a symlink loop at {t}/loop, not a folder'),
    (['bench', '--out', '{t}/file.txt'], '--out {t}/file.txt is a file, not a folder')])
def test_a_path_given_on_the_command_line_is_said_for_what_it_is(env, odd, args, says, monkeypatch, capsys):
    "`data --archive DIR` said the archive 'does not exist'; `--out` a symlink loop gave a RuntimeError traceback."
    status, _, err = here([a.format(t=odd) for a in args], env, monkeypatch, capsys)
    assert status == 2 and says.format(t=odd) in err and len(err.strip().splitlines()) == 2, err  # what, and where to look
    assert not (odd/'s').exists() and (odd/'file.txt').read_text() == 'mine'

@pytest.mark.parametrize('var,value,says', [
    ('MNIST37_ARCHIVE', '{t}/folder', 'MNIST37_ARCHIVE={t}/folder is a folder, not a file'),
    ('MNIST37_MNIST_ARCHIVE', '{t}/loop', 'MNIST37_MNIST_ARCHIVE={t}/loop is a symlink loop, not a file'),
    ('FASTAI_HOME', '{t}/file.txt', 'FASTAI_HOME={t}/file.txt is a file, not a folder'),
    ('FASTAI_HOME', '{t}/loop', 'FASTAI_HOME={t}/loop is a symlink loop'),
    ('FASTAI_HOME', '{t}/file.txt/h', 'FASTAI_HOME={t}/file.txt/h is a path through a file')])
def test_a_path_given_in_a_variable_names_the_variable(env, odd, tmp_path, var, value, says, monkeypatch, capsys):
    e = {**env, 'FASTAI_HOME': str(tmp_path/'home'), var: value.format(t=odd)}
    status, _, err = here(['data'], e, monkeypatch, capsys)
    assert status == 1 and says.format(t=odd) in one_line(err), err

def test_a_linked_data_folder_is_named_as_a_link(home, tmp_path, fake_archive):
    "A symlinked mnist_sample was reported as 'data is incomplete ... move it away' naming the whole data folder."
    from mnist37.datasets.source import DataError, find_mnist_sample
    mine = tmp_path/'my_copy'; (mine/'train'/'3').mkdir(parents=True); (mine/'train'/'3'/'a.png').write_bytes(b'mine')
    (home/'data').mkdir(parents=True); (home/'data'/'mnist_sample').symlink_to(mine)
    with pytest.raises(DataError) as e: find_mnist_sample(archive=fake_archive)
    said = str(e.value)
    assert said.startswith(f"{home/'data'/'mnist_sample'} is a link to {mine}") and 'remove the link' in said, said
    assert (mine/'train'/'3'/'a.png').read_bytes() == b'mine' and (home/'data'/'mnist_sample').is_symlink()

# ---- 3. Bounded before unpacked: memory stays flat in what a header declares

def gzip_of(head: bytes, zeros: int, path: Path) -> Path:
    "A gzip file of `head` then `zeros` zero bytes (a multiple of 1 MiB), in about a second: after a full flush every"
    " MiB of zeros compresses to the same bytes, so they are compressed once and repeated."
    c, mib = zlib.compressobj(9, zlib.DEFLATED, -15), bytes(1 << 20)
    first, same = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH), c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(zeros >> 20): crc = zlib.crc32(mib, crc)
    path.write_bytes(b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff' + first + same*(zeros >> 20) + c.flush()
                     + struct.pack('<II', crc, (len(head) + zeros) & 0xffffffff))
    return path

RSS = """import resource, sys
from mnist37.datasets.source import DataError, install_archive
from mnist37.datasets.mnist import MNIST
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try: install_archive(sys.argv[1], root=sys.argv[2], layout=MNIST)
except DataError as e: print(e)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)//1024)"""  # peak memory growth, in MiB

@pytest.mark.parametrize('kind,says', [(tarfile.GNUTYPE_LONGNAME, '(long name) declares 1,073,741,824 bytes'),
                                       (tarfile.XHDTYPE, '(pax) declares 1,073,741,824 bytes')])
def test_a_header_declaring_a_gibibyte_is_refused_before_it_is_read(tmp_path, kind, says):
    "A 1 MB --mnist-archive whose first header declares 1 GiB made the command hold the whole GiB before refusing."
    head = tarfile.TarInfo('././@LongLink' if kind == tarfile.GNUTYPE_LONGNAME else 'pax'); head.type, head.size = kind, 2**30
    bomb = gzip_of(head.tobuf(format=tarfile.GNU_FORMAT), 2**30, tmp_path/'mnist_png.tgz')
    assert bomb.stat().st_size < 2*2**20  # a small file...
    r = subprocess.run([sys.executable, '-c', RSS, str(bomb), str(tmp_path/'data')], capture_output=True, text=True,
                       timeout=600, env={**os.environ, 'FASTAI_HOME': str(tmp_path/'home')}, cwd=tmp_path)
    said, grew = r.stdout.strip().rsplit('\n', 1)
    assert int(grew) < 100, f'peak memory grew by {grew} MiB'  # ...that declares 1 GiB: nothing of it is read
    assert says in said and str(bomb) in said, r.stdout + r.stderr[-2000:]
    assert not (tmp_path/'data'/'mnist_png').exists()

# ---- 4. Devices: one rule (ASCII digits, no leading zero), and the variable is named

@pytest.mark.parametrize('how', ['--device', 'MNIST37_DEVICE'])
@pytest.mark.parametrize('value', ['cpu:00', 'cuda:\u0661', 'cpu:\u0660', 'cuda:01', 'cpu:\uff10'])
def test_a_device_number_is_ascii_digits_without_a_leading_zero(env, how, value, monkeypatch, capsys):
    "`--device cpu:00` passed the check (str.isdigit) and then torch.device raised: a traceback, exit 1."
    argv, e = (['train', '--model', 'baseline', '--device', value], env) if how == '--device' else \
              (['train', '--model', 'baseline'], {**env, 'MNIST37_DEVICE': value})
    status, _, err = here(argv, e, monkeypatch, capsys)  # anything but SystemExit escaping fails the test
    assert status == 2 and f"device {value!r}: after ':' comes a device number" in err and '0-9' in err, err
    assert (f'MNIST37_DEVICE={value!r}' in err) == (how == 'MNIST37_DEVICE'), err
    r = cli('train', '--device', value, env=env) if value == 'cpu:00' else None  # and once from the outside
    assert r is None or r.returncode == 2 and 'Traceback' not in r.stderr and "'cpu:00'" in r.stderr, r.stderr

# ---- 5. Environment switches: only the documented values

def test_allow_repacked_false_keeps_the_checksum_gate_on(home, fake_archive, monkeypatch):
    "MNIST37_ALLOW_REPACKED=false turned the checksum gate off (any non-empty value did)."
    from mnist37.datasets.source import DataError, install_archive
    for off in ['false', 'FALSE', '0', '']:
        monkeypatch.setenv('MNIST37_ALLOW_REPACKED', off)
        with pytest.raises(DataError, match='its sha256 is'): install_archive(fake_archive)
    monkeypatch.setenv('MNIST37_ALLOW_REPACKED', 'yes')
    with pytest.raises(ValueError, match=r"MNIST37_ALLOW_REPACKED='yes' is not an on/off value: .*1 or true.*0 or false"):
        install_archive(fake_archive)
    assert not (home/'data'/'mnist_sample').exists()

@pytest.mark.parametrize('var', ['MNIST37_OFFLINE', 'MNIST37_ALLOW_REPACKED'])
def test_a_switch_with_another_value_is_a_wrong_call(env, var, monkeypatch, capsys):
    status, _, err = here(['data'], {**env, var: 'yes'}, monkeypatch, capsys)
    assert status == 2 and f"{var}='yes' is not an on/off value" in err, err

# ---- 6. A run that diverges is recognised by its class, not by the words of its message

def test_divergence_is_caught_by_its_class(monkeypatch, capsys):
    "The CLI recognised a diverging run by matching 'NaN' in its message: any error that said NaN passed for one."
    import types, mnist37.data, mnist37.datasets.source
    import mnist37.recipes
    from mnist37 import cli as cli_module
    from mnist37.linear import DivergedError
    monkeypatch.setattr(mnist37.datasets.source, 'find_mnist_sample', lambda archive: types.SimpleNamespace(path='.', full=False))
    monkeypatch.setattr(mnist37.data, 'load_sample', lambda path: None)  # no data needed: training is replaced
    def diverge(*a, **k): raise DivergedError('the loss went up to 1e38 and beyond')  # no 'NaN' in the words
    monkeypatch.setattr(mnist37.recipes, 'train_recipe', diverge)
    with pytest.raises(SystemExit) as e: cli_module.main(['train', '--model', 'linear', '--lr', '100'])
    assert e.value.code == 2 and '--lr 100.0: the loss went up' in capsys.readouterr().err
    def bug(*a, **k): raise ValueError('a bug that mentions NaN')  # not a divergence: shown as the bug it is
    monkeypatch.setattr(mnist37.recipes, 'train_recipe', bug)
    with pytest.raises(ValueError, match='a bug that mentions NaN'): cli_module.main(['train', '--model', 'linear'])

# ---- 7. Rough edges a new user met

def test_train_help_names_every_model_and_what_all_means(env, monkeypatch, capsys):
    status, out, _ = here(['train', '--help'], env, monkeypatch, capsys)
    text = re.sub(r'(?<=\w-) ', '', ' '.join(out.split()))  # argparse may wrap a line after a hyphen
    assert status == 0 and "the lesson's four" in text and 'baseline, linear, optim, net' in text, text
    assert 'digits-baseline, digits-linear, digits' in text, text

def test_data_suggests_an_archive_for_each_data_set_on_the_fallback(env, monkeypatch, capsys):
    status, out, err = here(['data'], env, monkeypatch, capsys)
    assert status == 0 and 'OFFLINE FALLBACK' in out, err
    assert 'mnist37 data --archive /path/to/mnist_sample.tgz' in out, out
    assert 'mnist37 data --mnist-archive /path/to/mnist_png.tgz' in out, out

def test_the_ten_digit_baseline_trains_with_no_learning_rate(env, monkeypatch, capsys):
    "train_digits now refuses lr=0, and MODELS gives the baseline (which trains nothing) lr 0: a ValueError traceback."
    import json
    status, out, err = here(['train', '--model', 'digits-baseline', '--json'], env, monkeypatch, capsys)
    assert status == 0 and json.loads(out)[0]['accuracy'] > 0.5, err
