"""No traceback for a bad input, anywhere on the command line: random numbers, strings, paths and devices for
every sub-command, run in-process (training and the benchmark replaced by instant stand-ins, the data on the
fallback), must end with exit 0, or with a short message: exit 2 for a wrong call, 1 for a data problem."""
import contextlib, io, os
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
        from mnist37.source import build_fallback; build_fallback()
    (root/'a_file').write_text('not a folder')
    (root/'folder').mkdir()
    return root

numbers = st.one_of(st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(['nan', 'inf', '-inf', '1e999', '-0', '0x10', '1_000', '', ' ', 'ten', '1e-320', '2**32']),
                    text(6))
devices = st.one_of(st.sampled_from(['cpu', 'cuda', 'mps', 'cuda:0', 'cuda:9', 'mps:0', 'mps:1', 'cpu:x', 'cpu:0',
                                     'tpu', '', ' CPU ', 'cuda:-1', 'cuda:', ':0']), text(6))
models = st.sampled_from(['all', 'baseline', 'linear', 'optim', 'net', 'cnn', '', 'NET'])

def paths(root):
    return st.one_of(st.sampled_from([str(root/'a_file'), str(root/'a_file'/'below'), str(root/'folder'), '/dev/null',
                                      '/proc/version', '/proc/nowhere/x', '', str(root/'new'/'deep')]),
                     st.text(alphabet='ab/._-~ ', max_size=8).map(lambda s: str(root/'t'/s)))

def calls(root):
    opt = lambda flag, values: st.one_of(st.just([]), values.map(lambda v: [flag, v]))
    train = st.tuples(*[opt('--model', models), opt('--epochs', numbers), opt('--lr', numbers), opt('--seed', numbers),
                        opt('--device', devices), opt('--archive', paths(root)), st.sampled_from([[], ['--json']])])
    bench = st.tuples(opt('--epochs', numbers), opt('--device', devices), opt('--out', paths(root)))
    data = st.tuples(opt('--archive', paths(root)))
    student = st.tuples(opt('--out', paths(root)), opt('--nbs', paths(root)))
    junk = st.lists(text(6), max_size=3).map(lambda l: (l,))
    return st.one_of(*[s.map(lambda parts, c=c: [c] + sum(parts, [])) for c, s in
                       [('train', train), ('bench', bench), ('data', data), ('student', student), ('fly', junk)]],
                     junk.map(lambda parts: parts[0]))

def call(argv, env):
    "Run `mnist37 argv` in-process; return (exit status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
         mock.patch.object(cli, 'train_model', lambda *a, **k: 0.9), mock.patch('mnist37.bench.bench', lambda **k: {}):
        try: cli.main(argv); status = 0
        except SystemExit as e:  # sys.exit('message') prints the message on stderr and exits 1
            status = e.code if isinstance(e.code, int) else 1
            if isinstance(e.code, str): err.write(e.code + '\n')
    return status, out.getvalue(), err.getvalue()

@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_command_line_ends_cleanly(places, data):
    argv = data.draw(calls(places), label='argv')
    env = {'FASTAI_HOME': str(places/'home'), 'MNIST37_OFFLINE': '1', 'MNIST37_ARCHIVE': '',
           'MNIST37_DEVICE': data.draw(st.one_of(st.just(''), devices), label='MNIST37_DEVICE')}
    status, out, err = call(argv, env)  # anything but SystemExit escaping here fails the test with its traceback
    assert status in (0, 1, 2), (argv, status, err)
    assert 'Traceback' not in out + err, (argv, err)
    if status:
        lines = err.strip().splitlines()
        assert 1 <= len(lines) <= 2 and lines[0].startswith('mnist37'), (argv, err)
