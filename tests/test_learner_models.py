"""The training entry points of the going-further modules refuse bad input by the lesson's one rule (issue 22 §3):
`fast.fit` and its `TensorLoader`, our `Learner`'s fit and its `Batches`, the ten-digit functions. An empty loader,
a learning rate that is not a finite positive number, non-finite inputs: a ValueError naming the argument and the
value. A loss that becomes NaN: `DivergedError` (a ValueError), whichever loop is training."""
import math
import pytest, torch
from hypothesis import given, settings, strategies as st
from torch import nn
from mnist37.digits import TenDigits, confusion_matrix, digits_learner, ideal_digits, nearest_ideal, train_digits
from mnist37.fast import TensorLoader, fit
from mnist37.learner import Batches, Learner, Loaders
from mnist37.linear import DivergedError, mnist_loss
from mnist37.net import simple_net

BAD_LRS = [0, -1, -0.1, float('nan'), float('inf'), float('-inf'), '0.1', None, True]

def rows(n=16, seed=0):
    "`n` random rows of 784 pixels and 0/1 targets as a column."
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 784, generator=g), (torch.rand(n, 1, generator=g) > .5).float()

def ten(n=30, seed=0):
    "A tiny `TenDigits`: `n` random images per split, every digit present."
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    return TenDigits(torch.rand(n, 28, 28, generator=g), y, torch.rand(n, 28, 28, generator=g), y.clone())

def learner(x, y, model=None):
    return Learner(Loaders(Batches(x, y, 4), Batches(x, y, 4)), model or nn.Linear(784, 1), mnist_loss)

def blown(model):
    "`model` with one weight made infinite, as after a step far too large: its outputs hold NaN."
    next(model.parameters()).data.view(-1)[0] = float('inf'); return model

# ---- fast.fit and TensorLoader

@pytest.mark.parametrize('lr', BAD_LRS, ids=repr)
def test_fast_fit_refuses_a_bad_lr_naming_it(lr):
    x, y = rows(); tl = TensorLoader(x, y, bs=4)
    with pytest.raises(ValueError) as e: fit(simple_net(), tl, tl, 1, lr)
    assert 'lr' in str(e.value) and repr(lr) in str(e.value)

def test_fast_refuses_empty_and_non_finite_inputs():
    x, y = rows()
    with pytest.raises(ValueError, match=r'x is empty.*\(0, 784\)'): TensorLoader(x[:0], y[:0])
    for bad in (float('nan'), float('inf')):
        xb = x.clone(); xb[3, 7] = bad
        with pytest.raises(ValueError, match='x has 1 NaN or infinite'): TensorLoader(xb, y)
    class Empty(TensorLoader):
        def __len__(self): return 0
    tl = TensorLoader(x, y, bs=4)
    with pytest.raises(ValueError, match='the loader valid gives no batches'): fit(simple_net(), tl, Empty(x, y), 1, 0.1)
    with pytest.raises(TypeError, match='the loader train .* has no length'): fit(simple_net(), iter(tl), tl, 1, 0.1)

def test_fast_fit_raises_diverged_when_the_loss_becomes_nan():
    x, y = rows(); tl = TensorLoader(x, y, bs=4)
    with pytest.raises(DivergedError, match='smaller learning rate'): fit(blown(simple_net()), tl, tl, 1, 0.1)

# ---- our Learner and its Batches

@pytest.mark.parametrize('lr', BAD_LRS, ids=repr)
def test_learner_fit_refuses_a_bad_lr_naming_it(lr):
    with pytest.raises(ValueError) as e: learner(*rows()).fit(1, lr)
    assert 'lr' in str(e.value) and repr(lr) in str(e.value)

def test_learner_refuses_empty_loaders_and_non_finite_inputs():
    x, y = rows()
    with pytest.raises(ValueError, match='the loader dls.train gives no batches'):
        Learner(Loaders([], Batches(x, y)), nn.Linear(784, 1), mnist_loss).fit(1, 0.1)
    with pytest.raises(TypeError, match='the loader dls.valid .* has no length'):
        Learner(Loaders(Batches(x, y), iter(Batches(x, y))), nn.Linear(784, 1), mnist_loss).fit(1, 0.1)
    with pytest.raises(ValueError, match='x is empty'): Batches(x[:0], y[:0])
    xb = x.clone(); xb[0, 0] = float('-inf')
    with pytest.raises(ValueError, match='x has 1 NaN or infinite'): Batches(xb, y)

def test_learner_fit_raises_diverged_when_the_loss_becomes_nan():
    x, y = rows()
    with pytest.raises(DivergedError): learner(x, y, blown(nn.Linear(784, 1))).fit(1, 0.1)
    # and a loss that only blows up in the recorder (a loss function that does not check) says so too
    mse = Learner(Loaders(Batches(x, y, 4), Batches(x, y, 4)), blown(nn.Linear(784, 1)), nn.functional.mse_loss)
    with pytest.raises(DivergedError, match='smaller learning rate'): mse.fit(1, 0.1)

@settings(max_examples=40, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_learner_accepts_exactly_the_finite_positive_lrs(lr):
    learn = learner(*rows(8))
    if math.isfinite(lr) and lr > 0:
        try: learn.fit(1, lr)
        except DivergedError: pass  # a huge lr may blow up: that is training's answer, not a refusal of the value
    else:
        with pytest.raises(ValueError, match='lr'): learn.fit(1, lr)

# ---- the ten-digit functions

@pytest.mark.parametrize('lr', BAD_LRS, ids=repr)
def test_train_digits_refuses_a_bad_lr_naming_it(lr):
    with pytest.raises(ValueError) as e: train_digits('digits-linear', ten(), epochs=1, lr=lr, device=torch.device('cpu'))
    assert 'lr' in str(e.value) and repr(lr) in str(e.value)

def test_digits_functions_refuse_empty_and_non_finite_inputs():
    d, cpu = ten(), torch.device('cpu')
    nan = d.train_x.clone(); nan[2, 3, 4] = float('nan')
    with pytest.raises(ValueError, match='x holds 1 NaN'): ideal_digits(nan, d.train_y)
    with pytest.raises(ValueError, match='x has 1 NaN'): train_digits('digits', d._replace(train_x=nan), 1, device=cpu)
    with pytest.raises(ValueError, match='x holds 1 NaN'): train_digits('digits-baseline', d._replace(valid_x=nan), device=cpu)
    with pytest.raises(ValueError, match='ideals holds'): nearest_ideal(d.valid_x, ideal_digits(d.train_x, d.train_y)*float('inf'))
    with pytest.raises(ValueError, match='x is empty'): train_digits('digits-linear', d._replace(valid_x=d.valid_x[:0], valid_y=d.valid_y[:0]), 1, device=cpu)
    with pytest.raises(ValueError, match='x is empty'): ideal_digits(d.train_x[:0], d.train_y[:0])
    with pytest.raises(ValueError, match='same number'): confusion_matrix(d.valid_y[:3], d.valid_y[:2])
    with pytest.raises(ValueError, match='at least one'): confusion_matrix(d.valid_y[:0], d.valid_y[:0])

def test_digits_training_raises_diverged_when_the_loss_becomes_nan():
    learn = digits_learner('digits-linear', ten(), device=torch.device('cpu'))
    blown(learn.model)
    with pytest.raises(DivergedError, match='smaller learning rate'): learn.fit(1, 0.1)
