"The lesson's models (03-05): what their functions refuse, and what the notebooks' Learners hold."
import ast, io, json, math, subprocess, sys, zipfile
from collections import Counter
from functools import partial
from pathlib import Path
import pytest, torch
import mnist37.linear as L
import mnist37.optim as O
from mnist37.linear import batch_accuracy, init_params, linear1, mnist_loss, to_xy, train_epoch, validate_epoch
from mnist37.net import load_weights, save_weights, simple_net
from mnist37.optim import BasicOptim, fit_epoch, train_model

ROOT = Path(__file__).parent.parent

def _toy(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=g)
    return x, (x[:, :392].mean(1, keepdim=True) > x[:, 392:].mean(1, keepdim=True)).float()

def _linear():
    w, b = init_params((784, 1)), init_params(1)
    return partial(linear1, weights=w, bias=b), (w, b)

def _message(f):
    "The message of the ValueError (or subclass) `f` raises."
    with pytest.raises(ValueError) as e: f()
    return str(e.value)

# ---- to_xy: a stack of 28x28 images with finite pixels, at least one
ok = torch.rand(3, 28, 28)
nan = ok.clone(); nan[1, 5, 5] = float('nan')
inf = ok.clone(); inf[0, 0, 0] = float('inf')
@pytest.mark.parametrize('threes,sevens,must', [
    (torch.rand(3, 27, 28), ok, ['threes', '(3, 27, 28)', '(N, 28, 28)']),
    (ok, torch.rand(2, 784), ['sevens', '(2, 784)']),
    (torch.rand(28, 28), ok, ['threes', '(28, 28)']),
    (torch.zeros(0, 28, 28), ok, ['threes', 'empty']),
    (ok, torch.zeros(0, 28, 28), ['sevens', 'empty']),
    (nan, ok, ['threes', '1 NaN or infinite']),
    (ok, inf, ['sevens', 'NaN or infinite'])])
def test_to_xy_refuses_what_is_not_a_stack_of_digits(threes, sevens, must):
    msg = _message(lambda: to_xy(threes, sevens))
    for m in must: assert m in msg, (m, msg)

def test_to_xy_on_good_input_is_unchanged():
    x, y = to_xy(ok, torch.rand(2, 28, 28))
    assert x.shape == (5, 784) and y.squeeze(1).tolist() == [1, 1, 1, 0, 0]

# ---- a learning rate is a finite positive number
@pytest.mark.parametrize('lr', [float('nan'), float('inf'), -1., 0, '1', True, None])
def test_learning_rate_refused_by_name_and_value(lr):
    x, y = _toy(); model, params = _linear()
    for f in [lambda: train_epoch(model, [(x, y)], lr, params), lambda: BasicOptim(params, lr)]:
        msg = _message(f)
        assert 'lr' in msg and repr(lr) in msg and 'positive' in msg, msg

# ---- a loss that becomes NaN: one class, DivergedError, a ValueError
def test_divergence_raises_diverged_error():
    Diverged = getattr(L, 'DivergedError', None)
    assert Diverged is not None and issubclass(Diverged, ValueError)
    x, y = _toy(); net = simple_net()
    with pytest.raises(Diverged, match='smaller'):
        for _ in range(5): train_epoch(net, [(x[:16], y[:16]), (x[16:], y[16:])], 1e30, list(net.parameters()))
    net = simple_net()
    with pytest.raises(Diverged, match='smaller'):
        for _ in range(5): fit_epoch(net, [(x[:16], y[:16]), (x[16:], y[16:])], BasicOptim(net.parameters(), 1e30))
    with pytest.raises(Diverged): mnist_loss(torch.tensor([[float('nan')]]), torch.tensor([[1.]]))
    with pytest.raises(Diverged): L.check_finite(torch.tensor(float('inf')), 0.1)

# ---- an empty loader: one rule, `linear.check_loader`, named and refused before any training step
def test_empty_loader_is_named():
    model, params = _linear(); net = simple_net()
    for f in [lambda: train_epoch(model, [], 1., params), lambda: validate_epoch(model, []),
              lambda: fit_epoch(net, [], BasicOptim(net.parameters(), 1.)),
              lambda: train_model(net, 1, [], [], BasicOptim(net.parameters(), 1.))]:
        msg = _message(f)
        assert 'the loader dl gives no batches' in msg and 'at least one item' in msg, msg

def test_empty_validation_loader_is_refused_before_training():
    "An empty validation loader is named before the first step: the model is untouched (it used to train an epoch first)."
    x, y = _toy(); good = [(x[:16], y[:16]), (x[16:], y[16:])]
    net = simple_net(); before = [p.detach().clone() for p in net.parameters()]
    msg = _message(lambda: train_model(net, 1, good, [], BasicOptim(net.parameters(), 1.)))
    assert 'the loader valid_dl gives no batches' in msg, msg
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    for train in (L.train_linear, O.train_optim):   # they used to fail with a bare StopIteration
        msg = _message(lambda: train(good, [], 1))
        assert 'the loader valid gives no batches' in msg, msg
        msg = _message(lambda: train([], good, 1))
        assert 'the loader train gives no batches' in msg, msg

def test_a_loader_without_length_is_named():
    "A generator can be read once: refused with its name, not trained on for one epoch and then silently empty."
    x, y = _toy(); model, params = _linear(); net = simple_net()
    once = lambda: ((x[i:i+16], y[i:i+16]) for i in (0, 16))
    for f in [lambda: train_epoch(model, once(), 1., params), lambda: validate_epoch(model, once()),
              lambda: fit_epoch(net, once(), BasicOptim(net.parameters(), 1.))]:
        with pytest.raises(TypeError, match='the loader dl .*has no length'): f()

# ---- load_weights: a folder, and a small file that declares a huge tensor
def test_load_weights_on_a_folder_says_folder(tmp_path):
    with pytest.raises(OSError) as e: load_weights(simple_net(), tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and 'folder' in msg.replace(str(tmp_path), ''), msg   # (the test's own path says folder)

def test_load_weights_other_model_names_the_tensor(tmp_path):
    f = save_weights(simple_net(), tmp_path/'net.pth')
    msg = _message(lambda: load_weights(simple_net(10), f))
    assert 'different model' in msg and '0.' in msg and '(10' in msg and '(30' in msg, msg   # the tensor, both shapes

def _declares_huge(out, floats=2**26):
    "A weights file of a few hundred KB whose one tensor declares `floats` floats: its record is zeros, deflated."
    buf = io.BytesIO(); torch.save({'0.weight': torch.zeros(1000)}, buf)
    zin = zipfile.ZipFile(buf)
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith('data.pkl'):
                old = b'M' + (1000).to_bytes(2, 'little'); assert data.count(old) == 2
                data = data.replace(old, b'J' + floats.to_bytes(4, 'little'))
            if info.filename.endswith('data/0'):
                with zout.open(info.filename, 'w', force_zip64=True) as f:
                    for _ in range(floats*4 // 2**24): f.write(bytes(2**24))
            else: zout.writestr(info.filename, data)
    return out

MEASURE = '''
import resource, sys
from mnist37.net import load_weights, simple_net
net = simple_net(); before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try: load_weights(net, sys.argv[1]); print('loaded')
except Exception as e: print(type(e).__name__, e)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)//1024)
'''

def test_load_weights_refuses_a_huge_declared_tensor_before_allocating_it(tmp_path):
    f = _declares_huge(tmp_path/'huge.pth')
    assert f.stat().st_size < 2**20                       # well under 1 MB on disk, 256 MB declared
    out = subprocess.run([sys.executable, '-c', MEASURE, str(f)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    *msg, grown_mb = out.stdout.strip().splitlines()
    msg = '\n'.join(msg)
    assert msg.startswith('ValueError') and str(f) in msg and 'save_weights' in msg, out
    assert int(grown_mb) < 64, (grown_mb, msg)           # peak memory did not grow with the declared 256 MB

# ---- the lesson's Learners: one callback of each kind (one progress bar, one table)
def _learner_calls(nb):
    "Import lines and `Learner(...)` expressions of a notebook's code cells."
    imports, calls = [], []
    for c in json.loads(nb.read_text())['cells']:
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        try: tree = ast.parse('\n'.join(l for l in src.splitlines() if not l.startswith(('%', '!'))))
        except SyntaxError: continue
        imports += [ast.get_source_segment(src, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                    and 'mnist37.exercises' not in ast.get_source_segment(src, n)]
        calls += [ast.get_source_segment(src, n) for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and getattr(n.func, 'id', None) == 'Learner']
    return imports, calls

@pytest.mark.parametrize('nb', ['04_optimizer.ipynb', '05_neural_net.ipynb'])
def test_lesson_learners_hold_one_callback_of_each_type(nb):
    imports, calls = _learner_calls(ROOT/'nbs'/nb)
    assert calls, nb
    from mnist37.optim import make_dls
    x, y = _toy()
    ns = {'dset': list(zip(x, y)), 'valid_dset': list(zip(x, y)), 'make_dls': make_dls, 'simple_net': simple_net, 'simple_net2': simple_net,
          'cnn': torch.nn.Linear(784, 1), 'device': 'cpu'}
    for i in imports: exec(i, ns)
    ns['dls'] = make_dls(ns['dset'], ns['valid_dset'], device='cpu')
    for call in calls:
        learn = eval(call, ns)
        twice = [t.__name__ for t, n in Counter(type(cb) for cb in learn.cbs).items() if n > 1]
        assert not twice, f'{nb}: {call} holds two or more of {twice}'

# ---- one empty-loader rule: only linear.check_loader words it, and every loop over batches calls it
def _loops_over_batches(tree):
    "True if the module has a `for xb, yb in ...` loop or comprehension: it reads (images, targets) batches."
    fors = [n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.comprehension))]
    return any(isinstance(f.target, ast.Tuple) and [getattr(e, 'id', '') for e in f.target.elts] == ['xb', 'yb']
               for f in fors)

def test_one_empty_loader_rule(pkg=ROOT/'mnist37'):
    wording, without_rule = [], []
    for f in sorted(pkg.rglob('*.py')):
        tree, mod = ast.parse(f.read_text()), f.relative_to(pkg).as_posix()
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            texts = [n.value for n in ast.walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            if any('no batch' in t for t in texts): wording.append(f'{mod}:{fn.name}')
        calls = {getattr(n.func, 'id', getattr(n.func, 'attr', None)) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        if _loops_over_batches(tree) and 'check_loader' not in calls: without_rule.append(mod)
    assert wording == ['linear.py:check_loader'], f'the empty-loader refusal is worded outside linear.check_loader: {wording}'
    assert not without_rule, f'these modules loop over batches without linear.check_loader: {without_rule}'
