"The lesson's library functions: what they compute, and the clear errors a student's typical mistakes get."
import pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from mnist37.baseline import is_3, mean_digit, mnist_distance, rmse_distance
from mnist37.device import get_device, pick_device, set_seed
from mnist37.fast import TensorLoader, fit
from mnist37.linear import batch_accuracy, init_params, linear1, mnist_loss, train_epoch, to_xy
from mnist37.net import load_weights, save_weights, simple_net
from mnist37.optim import BasicOptim, fit_epoch, make_dls

col = lambda *v: torch.tensor(v, dtype=torch.float32).unsqueeze(1)

# ---- mnist_loss / batch_accuracy
@pytest.mark.parametrize('f', [mnist_loss, batch_accuracy])
@pytest.mark.parametrize('preds,targets,err,match', [
    (col(1., 2.), torch.tensor([1., 0.]), ValueError, r'targets.unsqueeze\(1\)'),
    (col(1., 2.), col(1., 2.), ValueError, 'targets must be 0 .* or 1'),
    (col(float('nan'), 2.), col(1., 0.), ValueError, 'smaller one'),
    (col(float('inf'), 2.), col(1., 0.), ValueError, 'NaN or infinity'),
    (torch.zeros(0, 1), torch.zeros(0, 1), ValueError, 'empty batch'),
    ([0.5, 0.1], col(1., 0.), TypeError, 'predictions must be a torch tensor, got list'),
    (col(1., 2.), [1, 0], TypeError, 'targets must be a torch tensor')])
def test_loss_and_accuracy_refuse_bad_input(f, preds, targets, err, match):
    with pytest.raises(err, match=match): f(preds, targets)

def test_mnist_loss_values_and_gradient():
    p, t = col(0.9, 0.4, -0.2), col(1, 0, 1)
    s = torch.sigmoid(p)
    assert mnist_loss(p, t).item() == pytest.approx(((1 - s[0]) + s[1] + (1 - s[2])).item()/3, abs=1e-7)
    p.requires_grad_(); mnist_loss(p, t).backward()
    assert torch.allclose(p.grad, torch.where(t == 1, -s*(1 - s), s*(1 - s))/3, atol=1e-7)

finite = st.floats(-50, 50, allow_nan=False, width=32)
any_float = st.one_of(finite, st.just(float('nan')), st.just(float('inf')), st.just(-float('inf')))

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 6), data=st.data(), flat_targets=st.booleans())
def test_loss_property(n, data, flat_targets):
    "For any predictions and targets: the reference result, or the documented error; nothing else."
    preds = torch.tensor(data.draw(st.lists(any_float, min_size=n, max_size=n)), dtype=torch.float32).reshape(n, 1)
    targs = torch.tensor(data.draw(st.lists(st.sampled_from([0., 1., 2.]), min_size=n, max_size=n)), dtype=torch.float32)
    targs = targs if flat_targets else targs.reshape(n, 1)
    valid = (not flat_targets and n > 0 and torch.isfinite(preds).all() and ((targs == 0) | (targs == 1)).all())
    for f, ref in [(mnist_loss, lambda p, t: torch.where(t == 1, 1 - p.sigmoid(), p.sigmoid()).mean()),
                   (batch_accuracy, lambda p, t: ((torch.sigmoid(p) > 0.5).float() == t).float().mean())]:
        if valid: assert torch.allclose(f(preds, targs), ref(preds, targs))
        else:
            with pytest.raises(ValueError): f(preds, targs)

# ---- mnist_distance / is_3
@settings(max_examples=100, deadline=None)
@given(lead=st.lists(st.integers(1, 3), max_size=2), h=st.sampled_from([27, 28]), w=st.sampled_from([28, 29]),
       other_lead=st.lists(st.integers(1, 3), max_size=2), seed=st.integers(0, 100))
def test_distance_property(lead, h, w, other_lead, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(*lead, h, w, generator=g), torch.rand(*other_lead, 28, 28, generator=g)
    try: torch.broadcast_shapes(a.shape, b.shape); ok = (h, w) == (28, 28)
    except RuntimeError: ok = False
    for f, ref in [(mnist_distance, lambda: (a - b).abs().mean((-1, -2))), (rmse_distance, lambda: ((a - b)**2).mean((-1, -2)).sqrt())]:
        if ok: assert torch.allclose(f(a, b), ref())
        else:
            with pytest.raises(ValueError, match='expected one image|do not broadcast'): f(a, b)

def test_distance_refuses_unscaled_integers_and_warns_on_floats_above_one():
    img = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    with pytest.raises(TypeError, match=r'holds integers .*x.float\(\)/255'): mnist_distance(img, img.float()/255)
    with pytest.warns(UserWarning, match='divided by 255'): mnist_distance(img.float(), torch.zeros(28, 28))
    with pytest.raises(ValueError, match=r'shape \(10, 784\)'): is_3(torch.zeros(10, 784), torch.zeros(28, 28), torch.zeros(28, 28))
    with pytest.raises(TypeError, match='must be a torch tensor'): mean_digit([[0.0]*28]*28)

def test_is_3_on_toy_digits():
    m3, m7 = torch.zeros(28, 28), torch.ones(28, 28)
    x = torch.stack([torch.full((28, 28), .2), torch.full((28, 28), .9)])
    assert is_3(x, m3, m7).tolist() == [True, False]

# ---- training stops on a diverging learning rate
def _toy(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=g); y = (x[:, :392].mean(1, keepdim=True) > x[:, 392:].mean(1, keepdim=True)).float()
    return x, y

def test_diverging_learning_rate_stops_with_advice():
    x, y = _toy()
    net = simple_net()
    with pytest.raises(FloatingPointError, match='loss became nan at lr=1e.30; try a smaller learning rate'):
        fit(net, TensorLoader(x, y, bs=16), TensorLoader(x, y), 5, 1e30)
    net = simple_net()
    with pytest.raises((ValueError, FloatingPointError), match='smaller'):
        for _ in range(5): fit_epoch(net, TensorLoader(x, y, bs=16), BasicOptim(net.parameters(), 1e30))
    # weights that already blew up: the loss refuses the NaN predictions and says why
    w, b = init_params((784, 1)), init_params(1)
    with torch.no_grad(): w[0] = float('inf'); w[1] = -float('inf')
    from functools import partial
    with pytest.raises(ValueError, match='learning rate is probably too large'):
        train_epoch(partial(linear1, weights=w, bias=b), TensorLoader(x, y, bs=16), 1., (w, b))

# ---- optimizer, models, reproducibility
def test_basic_optim_matches_torch_sgd_and_reads_well():
    x, y = _toy()
    set_seed(3); a = torch.nn.Linear(784, 1); b = torch.nn.Linear(784, 1); b.load_state_dict(a.state_dict())
    fit_epoch(a, TensorLoader(x, y, bs=16), BasicOptim(a.parameters(), 0.5))
    fit_epoch(b, TensorLoader(x, y, bs=16), torch.optim.SGD(b.parameters(), lr=0.5, momentum=0))
    for p, q in zip(a.parameters(), b.parameters()): assert torch.allclose(p, q, atol=1e-6)
    assert repr(BasicOptim(a.parameters(), 0.5)) == 'BasicOptim(lr=0.5, 2 tensors, 785 numbers)'
    with pytest.raises(ValueError, match='no parameters'): BasicOptim([], 0.1)

def test_same_seed_same_run_and_different_seed_differs():
    x, y = _toy(256)
    def run(seed):
        set_seed(seed); net = simple_net()
        return fit(net, TensorLoader(x, y, bs=32, shuffle=True, seed=seed), TensorLoader(x, y), 3, 0.5)
    assert run(7) == run(7)
    assert run(7) != run(8)

def test_weights_round_trip_and_refusals(tmp_path):
    x, _ = _toy()
    set_seed(0); net = simple_net()
    f = save_weights(net, tmp_path/'w'/'net.pth')
    assert torch.equal(load_weights(simple_net(), f)(x), net(x))
    with pytest.raises(ValueError, match='different model'): load_weights(simple_net(10), f)
    import pickle
    class Evil:
        def __reduce__(self): return (print, ('this would run code',))
    (tmp_path/'evil.pth').write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match='evil.pth is not a weights file'): load_weights(simple_net(), tmp_path/'evil.pth')
    with pytest.raises(FileNotFoundError, match='no weights file'): load_weights(simple_net(), tmp_path/'none.pth')

def test_simple_net_and_loader_refusals():
    with pytest.raises(ValueError, match='n_hidden'): simple_net(0)
    x, y = _toy()
    with pytest.raises(ValueError, match=r'unsqueeze\(1\)'): TensorLoader(x, y.squeeze(1))
    with pytest.raises(ValueError, match='bs must be'): TensorLoader(x, y, bs=0)

# ---- device
def test_device_choice_with_faked_availability(monkeypatch):
    monkeypatch.delenv('MNIST37_DEVICE', raising=False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert get_device().type == 'cuda'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: True)
    assert get_device().type == 'mps'
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: False)
    assert get_device().type == 'cpu'
    monkeypatch.setenv('MNIST37_DEVICE', 'cuda')
    with pytest.raises(ValueError, match="no CUDA; use 'cpu'"): get_device()
    monkeypatch.setenv('MNIST37_DEVICE', 'CPU')
    assert get_device().type == 'cpu'
    assert pick_device(True, False, 'cuda:1') == 'cuda:1'

def test_learner_data_and_model_on_the_same_device():
    from fastai.learner import Learner
    from fastai.optimizer import SGD
    x, y = _toy()
    dls = make_dls(list(zip(x, y)), list(zip(x, y)), bs=16)
    learn = Learner(dls, simple_net(), opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
    with learn.no_logging(): learn.fit(1, 0.1)
    xb, _ = dls.one_batch()
    param_device = next(learn.model.parameters()).device
    assert param_device == xb.device, (param_device, xb.device)
    assert xb.device.type == get_device().type, (xb.device, get_device())

def test_to_xy_labels():
    x, y = to_xy(torch.zeros(3, 28, 28), torch.ones(2, 28, 28))
    assert x.shape == (5, 784) and y.squeeze(1).tolist() == [1, 1, 1, 0, 0]
    assert y.dtype == torch.float32

@pytest.mark.parametrize('device', ['meta', get_device().type])
def test_to_xy_builds_labels_on_the_inputs_device(device):
    "Labels are made where the images are: on a GPU, x and y must not end up on different devices."
    x, y = to_xy(torch.zeros(3, 28, 28, device=device), torch.ones(2, 28, 28, device=device))
    assert x.device == y.device == torch.zeros(0, device=device).device, (x.device, y.device)
    assert y.shape == (5, 1)

@pytest.mark.parametrize('cut', [0, 1, 10, 100, 0.5, -22, -1])
def test_load_weights_on_an_empty_or_truncated_file_names_it(tmp_path, cut):
    "Any prefix of a good weights file (empty included) is a ValueError naming the file, never another error."
    set_seed(0); f = save_weights(simple_net(), tmp_path/'net.pth')
    data = f.read_bytes(); n = int(len(data)*cut) if isinstance(cut, float) else cut % len(data) if cut < 0 else cut
    bad = tmp_path/'cut.pth'; bad.write_bytes(data[:n])
    with pytest.raises(ValueError, match='cut.pth'): load_weights(simple_net(), bad)

@pytest.mark.parametrize('content', [b'hello\n', b'\0'*64, b'{"0.weight": [1, 2]}', 'zip', 'tensor', 'list'])
def test_load_weights_on_a_foreign_file_names_it(tmp_path, content, recwarn):
    "Text, bytes, a zip that torch did not write, a torch file that is not a state dict: a ValueError naming the file."
    import io, pickle, zipfile
    buf = io.BytesIO()
    if content == 'zip': zipfile.ZipFile(buf, 'w').writestr('notes.txt', 'mine')
    elif content == 'tensor': torch.save(torch.zeros(3), buf)
    elif content == 'list': buf.write(pickle.dumps([1, 2, 3], protocol=4))
    else: buf.write(content)
    bad = tmp_path/'foreign.pth'; bad.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match=r'foreign\.pth') as e: load_weights(simple_net(), bad)
    assert 'save_weights' in str(e.value) and '\n' not in str(e.value)
    assert not [w for w in recwarn if 'pickle' in str(w.message)], [str(w.message) for w in recwarn]   # no torch warnings on top

# ---- the sliders of 02 and the figures they draw
def test_plot_fit_draws_one_figure_and_returns_its_mse():
    import matplotlib.pyplot as plt
    from mnist37.sgd import plot_fit, quadratic, mse
    t = torch.arange(10.); y = 0.5*t**2 - 2*t + 3
    fig, ax = plt.subplots()
    assert plot_fit(0.5, -2., 3., t, y, ax=ax) == 0.
    err = plot_fit(1., 0., 0., t, y, ax=ax)
    assert err == pytest.approx(mse(quadratic(t, (1., 0., 0.)), y).item()) and f'MSE {err:.1f}' in ax.get_title()
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    plt.close('all')

def test_plot_descent_draws_the_steps_of_sgd_on_x_squared():
    import matplotlib.pyplot as plt
    from mnist37.sgd import plot_descent
    fig, ax = plt.subplots()
    xs = plot_descent(0.25, x0=2., steps=4, ax=ax)
    assert torch.allclose(xs, 2*0.5**torch.arange(5.))
    assert torch.allclose(torch.tensor(ax.lines[-1].get_xdata()), xs)
    assert plot_descent(1.5, steps=30).abs().max() > 1e6   # diverging steps are drawn too, without error
    plt.close('all')

def test_sliders_draw_once_without_a_front_end_and_use_interact_with_one(monkeypatch):
    import sys, types
    from mnist37 import sgd
    calls = []
    monkeypatch.delenv('MNIST37_WIDGETS', raising=False)
    sgd.sliders(lambda **kw: calls.append(kw), {'lr': 0.7}, lr=(0.01, 1.2, 0.01))
    assert calls == [{'lr': 0.7}]   # here (pytest, no notebook) the figure is drawn once, for the given values
    fake = types.SimpleNamespace(FloatSlider=lambda **kw: kw, interact=lambda fn, **kw: calls.append(('interact', kw)))
    monkeypatch.setitem(sys.modules, 'ipywidgets', fake); monkeypatch.setenv('MNIST37_WIDGETS', '1')
    sgd.sliders(lambda **kw: None, {'lr': 0.7}, lr=(0.01, 1.2, 0.01))
    assert calls[-1][0] == 'interact' and calls[-1][1]['lr']['value'] == 0.7 and calls[-1][1]['lr']['max'] == 1.2
    monkeypatch.setenv('MNIST37_WIDGETS', '0'); monkeypatch.setenv('JPY_SESSION_NAME', 'x.ipynb')
    assert not sgd._widget_frontend()

def test_the_widget_front_end_is_recognised_only_in_a_live_notebook(monkeypatch):
    import os, IPython
    from mnist37 import sgd
    class ZMQInteractiveShell: pass
    monkeypatch.delenv('MNIST37_WIDGETS', raising=False)
    for k in [k for k in os.environ if k.startswith('VSCODE') or k == 'JPY_SESSION_NAME']: monkeypatch.delenv(k)
    monkeypatch.setattr(IPython, 'get_ipython', lambda: ZMQInteractiveShell())
    assert not sgd._widget_frontend()             # a kernel with no front end session: nbclient, nbconvert
    monkeypatch.setenv('JPY_SESSION_NAME', '/home/me/02_sgd.ipynb')
    assert sgd._widget_frontend()                 # a kernel started by Jupyter for a notebook
    monkeypatch.setattr(IPython, 'get_ipython', lambda: None)
    assert not sgd._widget_frontend()             # a terminal

def test_the_seven_steps_diagram_draws_each_step_and_the_loop(monkeypatch):
    "02's graphviz diagram, with a stand-in for graphviz (not installed here or in CI: 02's own guard runs only with `dot`)."
    import sys, types, mnist37.sgd as sgd
    class Digraph:
        def __init__(self, **kw): self.edges = []
        def edge(self, a, b, label=None): self.edges.append((a, b, label))
    monkeypatch.setitem(sys.modules, 'graphviz', types.SimpleNamespace(Digraph=Digraph))
    assert sgd._steps_graph().edges == [('init', 'predict', None), ('predict', 'loss', None), ('loss', 'gradient', None),
                                        ('gradient', 'step', None), ('step', 'predict', 'repeat'), ('step', 'stop', None)]
