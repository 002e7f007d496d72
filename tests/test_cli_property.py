"""No traceback for a bad input, anywhere on the command line: random numbers, strings, paths (of every kind: files,
folders, symlink loops, links to nothing, fifos, devices), devices and on/off switches for every sub-command, with a
stdout and a stderr that work, are closed, or fail (a full disk, a reader gone), run in-process (training and the
benchmark replaced by instant stand-ins, the data on the fallback), must end with exit 0, or with a short message:
exit 2 for a wrong call, 1 for a data or output problem."""
import errno, io, os, sys
from unittest import mock
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mnist37 import cli

# what a shell can pass: no NUL byte, no lone surrogate
text = lambda n: st.text(st.characters(blacklist_characters='\x00', blacklist_categories=('Cs',)), max_size=n)

@pytest.fixture(scope='module')
def places(tmp_path_factory):
    "A fastai home with the fallback data built, a file, and a folder that exists."
    root = tmp_path_factory.mktemp('prop')
    with mock.patch.dict(os.environ, {'FASTAI_HOME': str(root/'home'), 'MNIST37_OFFLINE': '1'}):
        from mnist37.datasets.source import build_fallback; build_fallback()
    (root/'a_file').write_text('not a folder')
    (root/'folder').mkdir()
    (root/'loop').symlink_to(root/'loop'); (root/'gone').symlink_to(root/'nowhere'); os.mkfifo(root/'fifo')
    return root

numbers = st.one_of(st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(['nan', 'inf', '-inf', '1e999', '-0', '0x10', '1_000', '', ' ', 'ten', '1e-320', '2**32']),
                    text(6))
devices = st.one_of(st.sampled_from(['cpu', 'cuda', 'mps', 'cuda:0', 'cuda:9', 'mps:0', 'mps:1', 'cpu:x', 'cpu:0',
                                     'tpu', '', ' CPU ', 'cuda:-1', 'cuda:', ':0']), text(6))
models = st.sampled_from(['all', 'baseline', 'linear', 'optim', 'net', 'cnn', '', 'NET'])

def paths(root):
    return st.one_of(st.sampled_from([str(root/'a_file'), str(root/'a_file'/'below'), str(root/'folder'), '/dev/null',
                                      '/proc/version', '/proc/nowhere/x', '', str(root/'new'/'deep'), str(root/'loop'),
                                      str(root/'loop'/'x'), str(root/'gone'), str(root/'fifo'), '/dev/full']),
                     st.text(alphabet='ab/._-~ ', max_size=8).map(lambda s: str(root/'t'/s)))

def calls(root):
    opt = lambda flag, values: st.one_of(st.just([]), values.map(lambda v: [flag, v]))
    train = st.tuples(*[opt('--model', models), opt('--epochs', numbers), opt('--lr', numbers), opt('--seed', numbers),
                        opt('--device', devices), opt('--archive', paths(root)), opt('--mnist-archive', paths(root)),
                        st.sampled_from([[], ['--json']])])
    bench = st.tuples(opt('--epochs', numbers), opt('--device', devices), opt('--out', paths(root)))
    data = st.tuples(opt('--archive', paths(root)), opt('--mnist-archive', paths(root)))
    student = st.tuples(opt('--out', paths(root)), opt('--nbs', paths(root)))
    junk = st.lists(text(6), max_size=3).map(lambda l: (l,))
    return st.one_of(*[s.map(lambda parts, c=c: [c] + sum(parts, [])) for c, s in
                       [('train', train), ('bench', bench), ('data', data), ('student', student), ('fly', junk)]],
                     junk.map(lambda parts: parts[0]))

class Failing(io.StringIO):
    "A stream whose writes fail as a file's do: ENOSPC on a full disk, EPIPE when the reader has gone."
    def __init__(self, code): super().__init__(); self.code = code
    def write(self, s):
        if s: raise (BrokenPipeError if self.code == errno.EPIPE else OSError)(self.code, os.strerror(self.code))
        return 0

STREAMS = {'works': None, 'closed': None, 'full': errno.ENOSPC, 'broken': errno.EPIPE}  # broken: stdout only

def call(argv, env, stdout='works', stderr='works'):
    "Run `mnist37 argv` in-process with the streams given; return (exit status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    pick = lambda kind, mine: mine if kind == 'works' else None if kind == 'closed' else Failing(STREAMS[kind])
    with mock.patch.dict(os.environ, env), mock.patch.object(sys, 'stdout', pick(stdout, out)), \
         mock.patch.object(sys, 'stderr', pick(stderr, err)), \
         mock.patch('mnist37.recipes.train_recipe', lambda *a, **k: 0.9), mock.patch('mnist37.bench.bench', lambda **k: print('| bench table |') or {}):  # as the real one
        try: cli.main(argv); status = 0
        except SystemExit as e:  # sys.exit('message') prints the message on stderr and exits 1
            status = e.code if isinstance(e.code, int) else 1
            if isinstance(e.code, str): err.write(e.code + '\n')
    return status, out.getvalue(), err.getvalue()

def environments(root):
    "What a person may have set: a device, on/off switches (any text), archives and a fastai home of every kind."
    home = str(root/'home')  # mostly the home with the data built: a new one would build the fallback (seconds)
    return st.fixed_dictionaries({
        'FASTAI_HOME': st.sampled_from([home]*6 + [str(root/p) for p in ['a_file', 'loop', 'gone', 'a_file/h']]),
        'MNIST37_OFFLINE': st.sampled_from(['1']*4 + ['true', 'TRUE', 'yes', ' 1', 'on']),  # never off: no network
        'MNIST37_ALLOW_REPACKED': st.sampled_from(['', '1', '0', 'false', 'False', 'maybe', '2']),
        'MNIST37_ARCHIVE': st.one_of(st.just(''), paths(root)), 'MNIST37_MNIST_ARCHIVE': st.one_of(st.just(''), paths(root)),
        'MNIST37_DEVICE': st.one_of(st.just(''), devices)})

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_command_line_ends_cleanly(places, data):
    argv = data.draw(calls(places), label='argv')
    env = data.draw(environments(places), label='env')
    stdout, stderr = data.draw(st.sampled_from(['works']*3 + ['closed', 'full', 'broken']), label='stdout'), \
                     data.draw(st.sampled_from(['works']*3 + ['closed', 'full']), label='stderr')
    status, out, err = call(argv, env, stdout, stderr)  # anything but SystemExit escaping fails the test, traceback shown
    assert status in (0, 1, 2), (argv, status, err)
    assert 'Traceback' not in out + err, (argv, err)
    lines = err.strip().splitlines()
    if stderr == 'works' and stdout != 'broken' and (status or stdout in ('closed', 'full')):  # a failure has its words
        assert status and 1 <= len(lines) <= 2 and lines[0].startswith('mnist37'), (argv, stdout, status, err)
    if stdout == 'broken': assert status and 'standard output' not in err, (argv, err)  # a reader gone: quietly
