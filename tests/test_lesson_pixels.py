"Pixel functions of lessons 00-01 refuse what cannot be finite 28x28 images, by one rule (`check_images`)."
import re, warnings
import pytest, torch
from hypothesis import given, settings, strategies as st
from mnist37.data import check_images
from mnist37.baseline import baseline_accuracy, is_3, mean_digit, mnist_distance, rmse_distance

img = lambda *lead: torch.rand(*lead, 28, 28, generator=torch.Generator().manual_seed(0))

def _poison(x, value, at=(0, 3, 4)):
    x = x.clone(); x[at[-x.ndim:]] = value; return x

@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('call,name', [
    (lambda bad: mean_digit(bad), 'stack'),
    (lambda bad: mnist_distance(bad, img()), 'a'),
    (lambda bad: rmse_distance(img(4), bad), 'b'),
    (lambda bad: is_3(bad, img(), img()), 'x'),
    (lambda bad: baseline_accuracy(img(3), bad, img(), img()), 'valid7')])
def test_non_finite_pixels_are_refused_with_the_argument_and_value(call, name, value):
    bad = _poison(img(3) if name != 'b' else img(), value)
    with pytest.raises(ValueError) as e: call(bad)
    msg = str(e.value)
    assert msg.startswith(f'{name} holds 1 NaN or infinite pixel') and str(value) in msg and 'fix' in msg, msg

@pytest.mark.parametrize('call,name', [
    (lambda: mean_digit(img(0)), 'stack'), (lambda: mnist_distance(img(0), img()), 'a'),
    (lambda: rmse_distance(img(0), img()), 'a'), (lambda: baseline_accuracy(img(0), img(2), img(), img()), 'valid3')])
def test_empty_stacks_are_refused(call, name):
    with pytest.raises(ValueError, match=rf'^{name} is empty \(shape \(0, 28, 28\)\)'): call()

@pytest.mark.parametrize('call,name,shape', [
    (lambda: mean_digit(img()), 'stack', '(28, 28)'),               # one image is not a stack: mean(0) gave 28 numbers
    (lambda: mean_digit(torch.rand(5, 28, 27)), 'stack', '(5, 28, 27)'),
    (lambda: mnist_distance(torch.rand(5, 784), img()), 'a', '(5, 784)'),
    (lambda: is_3(img(2), torch.rand(784), img()), 'mean3', '(784,)'),
    (lambda: baseline_accuracy(img(2), img(), img(), img()), 'valid7', '(28, 28)')])
def test_images_that_are_not_28x28_name_the_argument_and_its_shape(call, name, shape):
    with pytest.raises(ValueError) as e: call()
    assert str(e.value).startswith(f'{name} has shape {shape}; expected') and '28, 28' in str(e.value), str(e.value)

def test_check_images_returns_good_input_and_keeps_the_type_errors():
    x = img(2)
    y = x[0]; assert check_images(x, 'x') is x and check_images(y, 'y') is y
    with pytest.raises(TypeError, match='x must be a torch tensor, got list'): check_images([[0.]*28]*28, 'x')
    with pytest.raises(TypeError, match=r'x holds integers \(torch.uint8\).*x.float\(\)/255'): check_images((x*255).byte(), 'x')
    with pytest.warns(UserWarning, match='x has values up to .*divided by 255'): check_images(x*255, 'x')

@settings(max_examples=120, deadline=None)
@given(n=st.integers(0, 3), hw=st.sampled_from([(28, 28), (28, 27), (784,)]), poison=st.sampled_from([None, 'nan', 'inf']),
       which=st.sampled_from(['mean_digit', 'mnist_distance', 'rmse_distance', 'is_3']))
def test_pixel_functions_give_the_reference_or_a_value_error_naming_the_argument(n, hw, poison, which):
    "For any stack: the plain lesson formula's result when the stack is good, else a ValueError that names it."
    x = torch.rand(n, *hw, generator=torch.Generator().manual_seed(n))
    if poison and x.numel(): x = x.clone(); x.view(-1)[x.numel()//2] = float(poison)
    good = hw == (28, 28) and n > 0 and poison is None
    m3, m7 = img(), img()*0.99
    call, ref, name = {
        'mean_digit': (lambda: mean_digit(x), lambda: x.mean(0), 'stack'),
        'mnist_distance': (lambda: mnist_distance(x, m3), lambda: (x - m3).abs().mean((-1, -2)), 'a'),
        'rmse_distance': (lambda: rmse_distance(m3, x), lambda: ((m3 - x)**2).mean((-1, -2)).sqrt(), 'b'),
        'is_3': (lambda: is_3(x, m3, m7), lambda: (x - m3).abs().mean((-1, -2)) < (x - m7).abs().mean((-1, -2)), 'x'),
    }[which]
    if good: assert torch.equal(call(), ref())
    else:
        with pytest.raises(ValueError) as e: call()
        assert re.match(rf'{name} (has shape|is empty|holds \d+ NaN)', str(e.value)), str(e.value)

# ---- the figures and sliders of 01-02
def test_compact_figures_stores_a_palette_png_that_looks_the_same(monkeypatch):
    import base64, io, IPython
    import matplotlib.pyplot as plt
    from IPython.core.formatters import DisplayFormatter
    from PIL import Image, ImageChops
    from mnist37.baseline import compact_figures
    monkeypatch.setattr(IPython, 'get_ipython', lambda: None)
    compact_figures()                                    # outside a notebook: nothing to do, no error
    events = type('Events', (), {'register': lambda *a: None, 'unregister': lambda *a: None})()
    shell = type('Shell', (), {'display_formatter': DisplayFormatter(), 'events': events})()
    monkeypatch.setattr(IPython, 'get_ipython', lambda: shell)
    compact_figures()
    fig, ax = plt.subplots(figsize=(4, 3)); ax.scatter(*torch.rand(2, 500), alpha=.4); ax.set_title('many colours')
    small = Image.open(io.BytesIO(base64.b64decode(shell.display_formatter.formatters['image/png'](fig))))
    full = io.BytesIO(); fig.savefig(full, format='png', bbox_inches='tight', facecolor='white'); plt.close(fig)
    full_im = Image.open(full).convert('RGB')
    assert small.mode == 'P' and len(small.getcolors(1000)) <= 256 and small.size == full_im.size
    assert len(base64.b64decode(shell.display_formatter.formatters['image/png'](plt.figure()))) > 0
    diff = ImageChops.difference(small.convert('RGB'), full_im)
    assert max(diff.getextrema(), key=lambda e: e[1])[1] < 40                     # no pixel visibly off
    assert full.getbuffer().nbytes > 1.5*len(base64.b64decode(shell.display_formatter.formatters['image/png'](fig)))
    plt.close('all')

@pytest.mark.parametrize('value', ['yes', '2', 'on '])
def test_a_widgets_switch_that_is_not_on_or_off_is_an_error_that_names_it(monkeypatch, value):
    from mnist37 import sgd
    monkeypatch.setenv('MNIST37_WIDGETS', value)
    with pytest.raises(ValueError, match="MNIST37_WIDGETS=.* is not an on/off value"): sgd._widget_frontend()
    for v, want in [('true', True), ('FALSE', False), ('1', True), ('0', False)]:
        monkeypatch.setenv('MNIST37_WIDGETS', v); assert sgd._widget_frontend() is want
