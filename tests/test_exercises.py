"The exercise checker: right answers, recognised mistakes, no answers given away, fresh inputs, a time limit, the caller's random state kept (student copies: test_student.py)."
import json, random, threading, time
from pathlib import Path
import nbformat, numpy as np, pytest, torch
import torch.nn.functional as F
from torch import nn
import mnist37.checks.feedback as feedback
from mnist37.checks.pixels import _rmse_problem
from mnist37.checks.sgd import _lr_limit
from mnist37.exercises import check

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [0, 1, 12345, None]   # None: drawn from the clock, as a student's check is

def not_written(*args): raise NotImplementedError('write your code here')

# ---- functions: a right answer and typical mistakes, for each exercise
rmse = lambda x, m: ((x - m)**2).mean((-1, -2)).sqrt()
l1 = lambda x, m: (x - m).abs().mean((-1, -2))

def ngrad(kind='right'):
    def f(fn, x, eps):
        out = torch.zeros_like(x)
        for i in range(x.numel()):
            e = torch.zeros_like(x).view(-1); e[i] = eps; e = e.view_as(x)
            if kind == 'all': e = torch.full_like(x, eps)
            if kind == 'central': d = (fn(x + e) - fn(x - e))/(2*eps)
            else: d = (fn(x + e) - fn(x))/(1 if kind == 'no_div' else eps)
            out.view(-1)[i] = -d if kind == 'sign' else d
        return out
    return f

def ngrad_in_place(fn, x, eps):
    out = torch.zeros_like(x); flat = x.view(-1)
    for i in range(x.numel()):
        f0 = fn(x); flat[i] += eps; out.view(-1)[i] = (fn(x) - f0)/eps   # never puts the number back
    return out

def mom(kind='right'):
    def step(params, velocity, lr, m):
        g = params.grad
        v = {'plain': g, 'damped': m*velocity + (1 - m)*g}.get(kind, m*velocity + g)
        params.data += lr*v if kind == 'ascent' else -lr*v
        if kind != 'no_clear': params.grad = None
        return v
    return step

def mom_leaf(params, velocity, lr, m):
    v = m*velocity + params.grad; params -= lr*v; return v

class MomSGD:
    def __init__(self, params, lr, mom, wd, kind='right'): self.ps, self.lr, self.mom, self.wd, self.kind, self.v = list(params), lr, mom, wd, kind, [None]*100
    def step(self):
        for i, p in enumerate(self.ps):
            d = p.grad.data + (0 if self.kind in ('no_wd', 'decoupled') else self.wd*p.data)
            self.v[i] = d if self.kind == 'no_mom' or self.v[i] is None else self.mom*self.v[i] + d
            p.data -= self.lr*self.v[i] + (self.lr*self.wd*p.data if self.kind == 'decoupled' else 0)
    def zero_grad(self):
        if self.kind != 'no_zero':
            for p in self.ps: p.grad = None
def momsgd(kind): return lambda params, lr, mom, wd: MomSGD(params, lr, mom, wd, kind)
class MomSGDGenerator(MomSGD):
    def __init__(self, params, lr, mom, wd): super().__init__([], lr, mom, wd); self.ps = params

class ClipSGD:   # clip the overall norm of all the gradients to max_norm, then plain SGD; or one typical mistake
    def __init__(self, params, lr, max_norm, kind='right'): self.ps, self.lr, self.m, self.kind = list(params), lr, max_norm, kind
    def step(self):
        gs = [p.grad.data for p in self.ps]
        total = sum((g**2).sum() for g in gs).sqrt().item()
        if self.kind == 'per_tensor': gs = [g*min(1, self.m/g.norm().item()) for g in gs]
        elif self.kind == 'clamp': gs = [g.clamp(-self.m, self.m) for g in gs]
        elif self.kind == 'always': gs = [g*self.m/total for g in gs]
        elif self.kind != 'no_clip': gs = [g*min(1, self.m/total) for g in gs]
        if self.kind != 'no_step':
            for p, g in zip(self.ps, gs): p.data -= self.lr*g
    def zero_grad(self):
        if self.kind != 'no_zero':
            for p in self.ps: p.grad = None
def clipsgd(kind): return lambda params, lr, max_norm: ClipSGD(params, lr, max_norm, kind)
class ClipSGDGenerator(ClipSGD):
    def __init__(self, params, lr, max_norm): super().__init__([], lr, max_norm); self.ps = params
class TorchClipped(torch.optim.SGD):   # right: PyTorch's clipping, then PyTorch's SGD
    def __init__(self, params, lr, max_norm): super().__init__(params, lr); self.max_norm = max_norm
    def step(self): nn.utils.clip_grad_norm_(self.param_groups[0]['params'], self.max_norm); super().step()
class ClipNotWritten:   # a student copy's stub
    def __init__(self, *args, **kwargs): raise NotImplementedError('write your code here')

def seq(*layers): return lambda: nn.Sequential(*layers)
def L(i, o): return nn.Linear(i, o)
class SharedReLU(nn.Module):   # one ReLU module used twice: right
    def __init__(self): super().__init__(); self.l1, self.l2, self.l3, self.act = L(784, 30), L(30, 30), L(30, 1), nn.ReLU()
    def forward(self, x): return self.l3(self.act(self.l2(self.act(self.l1(x)))))
class FunctionalReLU(nn.Module):   # F.relu in a custom forward, layers registered in another order: right
    def __init__(self): super().__init__(); self.out, self.hidden2, self.hidden1 = L(30, 1), L(30, 30), L(784, 30)
    def forward(self, x): return self.out(F.relu(self.hidden2(F.relu(self.hidden1(x)))))
class UnusedReLU(SharedReLU):   # ReLU modules created, never called: wrong
    def forward(self, x): return self.l3(self.l2(self.l1(x)))
class Detached(SharedReLU):
    def forward(self, x): return self.l3(self.act(self.l2(self.act(self.l1(x).detach()))))


FN_CASES = [  # exercise, function, ok, words the feedback must contain
    ('is_3_rmse', lambda x, a, b: rmse(x, a) < rmse(x, b), True, 'RMSE verdicts'),
    ('is_3_rmse', lambda x, a, b: ((x - a)**2).mean((-1, -2)) < ((x - b)**2).mean((-1, -2)), True, 'RMSE verdicts'),   # no sqrt: same verdicts
    ('is_3_rmse', lambda x, a, b: l1(x, a) < l1(x, b), False, 'mean absolute difference'),
    ('is_3_rmse', lambda x, a, b: rmse(x, a) > rmse(x, b), False, 'wrong way round'),
    ('is_3_rmse', lambda x, a, b: (x - a).mean((-1, -2)).abs() < (x - b).mean((-1, -2)).abs(), False, 'cancel'),
    ('is_3_rmse', lambda x, a, b: ((x - a)**2).mean().sqrt() < ((x - b)**2).mean().sqrt(), False, 'averaged over everything'),
    ('is_3_rmse', lambda x, a, b: rmse(x, a) - rmse(x, b), False, 'verdict per image'),
    ('is_3_rmse', lambda x, a, b: torch.stack([rmse(i, a) < rmse(i, b) for i in x]) if x.ndim == 3 else torch.tensor([True, False]), False, 'single image'),
    ('is_3_rmse', not_written, False, 'not written yet'),
    ('numerical_grad', ngrad(), True, 'matches what backward()'),
    ('numerical_grad', ngrad('central'), True, 'matches what backward()'),
    ('numerical_grad', ngrad('no_div'), False, 'divide each change by eps'),
    ('numerical_grad', ngrad('all'), False, 'one number at a time'),
    ('numerical_grad', ngrad('sign'), False, 'signs are flipped'),
    ('numerical_grad', ngrad_in_place, False, 'changed x itself'),
    ('numerical_grad', lambda f, x, eps: (f(x + eps) - f(x))/eps, False, 'one slope per number'),
    ('momentum_step', mom(), True, 'match SGD with momentum'),
    ('momentum_step', mom('plain'), False, 'plain SGD'),
    ('momentum_step', mom('damped'), False, 'averages the gradients'),
    ('momentum_step', mom('ascent'), False, 'up the slope'),
    ('momentum_step', mom('no_clear'), False, 'not cleared'),
    ('momentum_step', mom_leaf, False, 'torch.no_grad()'),
    ('momentum_step', lambda p, v, lr, m: None, False, 'return the new velocity'),
    ('MomentumSGD', momsgd('right'), True, 'match torch.optim.SGD'),
    ('MomentumSGD', lambda params, lr, mom, wd: torch.optim.SGD(params, lr, momentum=mom, weight_decay=wd), True, 'match torch.optim.SGD'),
    ('MomentumSGD', momsgd('no_wd'), False, 'ignore the weight decay'),
    ('MomentumSGD', momsgd('no_mom'), False, 'no momentum'),
    ('MomentumSGD', momsgd('decoupled'), False, 'adds wd * p to the gradient first'),
    ('MomentumSGD', momsgd('no_zero'), False, 'never cleared'),
    ('MomentumSGD', MomSGDGenerator, False, 'list(params)'),
    ('MomentumSGD', lambda params, lr: None, False, 'creating your optimizer failed'),
    ('MomentumSGD', ClipNotWritten, False, 'not written yet'),   # a student copy's stub: no seed to repeat
    ('ClippedSGD', clipsgd('right'), True, 'match clip_grad_norm_'),
    ('ClippedSGD', TorchClipped, True, 'match clip_grad_norm_'),
    ('ClippedSGD', clipsgd('per_tensor'), False, 'clip each tensor'),
    ('ClippedSGD', clipsgd('clamp'), False, 'cut single values'),
    ('ClippedSGD', clipsgd('always'), False, 'scale the gradients up'),
    ('ClippedSGD', clipsgd('no_step'), False, 'never moved'),
    ('ClippedSGD', clipsgd('no_clip'), False, 'plain SGD'),
    ('ClippedSGD', clipsgd('no_zero'), False, 'gradient is still there'),
    ('ClippedSGD', ClipSGDGenerator, False, 'list(params)'),
    ('ClippedSGD', lambda params, lr: None, False, 'creating your optimizer failed'),
    ('ClippedSGD', ClipNotWritten, False, 'not written yet'),
    ('simple_net2', seq(L(784, 30), nn.ReLU(), L(30, 30), nn.ReLU(), L(30, 1)), True, 'ReLU after each'),
    ('simple_net2', SharedReLU, True, 'ReLU after each'),
    ('simple_net2', FunctionalReLU, True, 'ReLU after each'),
    ('simple_net2', UnusedReLU, False, 'never called'),
    ('simple_net2', seq(L(784, 30), nn.ReLU(), L(30, 30), nn.ReLU(), L(30, 1), nn.Sigmoid()), False, 'through a sigmoid'),
    ('simple_net2', seq(L(784, 30), nn.ReLU(), L(30, 30), L(30, 1)), False, 'just one'),
    ('simple_net2', seq(L(784, 30), nn.ReLU(), L(30, 1)), False, '2 linear layers'),
    ('simple_net2', seq(L(784, 30), nn.ReLU(), L(30, 30), nn.ReLU(), L(30, 2)), False, 'one score per image'),
    ('simple_net2', seq(L(784, 30), nn.ReLU(), L(30, 30), nn.ReLU(), L(30, 1), nn.ReLU()), False, 'ReLU after the last'),
    ('simple_net2', seq(L(700, 30), nn.ReLU(), L(30, 1)), False, 'cannot take a batch'),
    ('simple_net2', seq(L(784, 20), nn.ReLU(), L(20, 20), nn.ReLU(), L(20, 1)), False, '30 each'),
    ('simple_net2', Detached, False, 'not every layer gets a gradient'),
    ('softmax_t', lambda x, t: torch.softmax(x/t, -1), True, 'do not overflow'),
    ('softmax_t', lambda x, t: torch.softmax(x, -1), False, 'changes nothing'),   # t applied after exp, normalised again
    ('softmax_t', lambda x, t: torch.softmax(x, -1)/t, False, 'sums to 1/t'),
    ('softmax_t', lambda x, t: torch.softmax(x*t, -1), False, 'multiplied the scores by t'),
    ('softmax_t', lambda x, t: (x/t).exp()/(x/t).exp().sum(-1, keepdim=True), False, 'overflows'),
    ('softmax_t', lambda x, t: torch.softmax(x/t, 0), False, 'each column sums to 1'),
    ('bce', lambda x, t: F.binary_cross_entropy_with_logits(x, t), True, 'also on logits of 10,000'),
    ('bce', lambda x, t: -(t*x.sigmoid().log() + (1 - t)*(1 - x.sigmoid()).log()).mean(), False, 'inf or nan'),
    ('bce', lambda x, t: F.binary_cross_entropy_with_logits(x, 1 - t), False, 'targets are flipped'),
    ('bce', lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction='sum'), False, 'rather than the sum'),
]

@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('name,fn,ok,words', FN_CASES, ids=[f'{c[0]}-{i}' for i, c in enumerate(FN_CASES)])
def test_function_feedback(name, fn, ok, words, seed):
    fb = check(name, fn, seed=seed)
    assert fb.ok == ok and words in fb.message, fb
    assert repr(fb).startswith('Correct!' if ok else 'Not yet:')
    drawn = 'not written yet' not in fb.message   # nothing to repeat for a stub
    assert (fb.seed is not None) == drawn and (seed is None or not drawn or fb.seed == seed) and fb.exercise == name
    assert ('inputs drawn with seed' in repr(fb)) == (not ok and drawn) and 'seed' not in fb.message   # after a failure only

@pytest.mark.parametrize('name,fn,ok,words', FN_CASES, ids=[f'{c[0]}-{i}' for i, c in enumerate(FN_CASES)])
def test_function_feedback_on_many_draws(name, fn, ok, words):
    "A student's check draws fresh inputs each time: the verdict and the named mistake must not depend on the draw."
    wrong = [seed for seed in range(100, 200) if not ((fb := check(name, fn, seed=seed)).ok == ok and words in fb.message)]
    assert not wrong, f'{name}: another verdict with seeds {wrong[:5]}'

# ---- values: predictions
STACK_RIGHT = {'a': (6, 28, 28), 'b': (168, 28), 'c': (6, 28), 'd': (28, 28)}
BROADCAST_RIGHT = {'a': (10, 28, 28), 'b': (10,), 'c': (3, 3)}
VALUE_CASES = [
    ('stack_shapes', STACK_RIGHT, True, 'all 4 shapes'),
    ('stack_shapes', {**STACK_RIGHT, 'a': torch.Size([6, 28, 28]), 'd': [28, 28]}, True, 'all 4 shapes'),
    ('stack_shapes', {**STACK_RIGHT, 'a': (28, 28, 6)}, False, 'new axis first'),
    ('stack_shapes', {**STACK_RIGHT, 'b': (6, 28, 28)}, False, 'cat adds no axis'),
    ('stack_shapes', {**STACK_RIGHT, 'c': (28,)}, False, 'keeps every image'),
    ('stack_shapes', {**STACK_RIGHT, 'd': (6,)}, False, 'not over the pixels'),
    ('stack_shapes', {**STACK_RIGHT, 'd': (7, 7)}, False, 'averages over axis 0 and removes it'),
    ('stack_shapes', {'a': (6, 28, 28)}, False, 'no prediction for b, c, d'),
    ('stack_shapes', {**STACK_RIGHT, 'a': 'six'}, False, 'as a tuple of numbers'),
    ('stack_shapes', (6, 28, 28), False, 'as a dict'),
    ('broadcast_shapes', BROADCAST_RIGHT, True, 'all 3 shapes'),
    ('broadcast_shapes', {**BROADCAST_RIGHT, 'b': 10}, True, 'all 3 shapes'),
    ('broadcast_shapes', {**BROADCAST_RIGHT, 'a': (28, 28)}, False, 'does not average the stack'),
    ('broadcast_shapes', {**BROADCAST_RIGHT, 'a': 'error'}, False, 'these shapes fit'),
    ('broadcast_shapes', {**BROADCAST_RIGHT, 'b': ()}, False, 'last two axes only'),
    ('broadcast_shapes', {**BROADCAST_RIGHT, 'c': (3,)}, False, 'both stretch'),
    ('broadcast_shapes', {**BROADCAST_RIGHT, 'c': 'error'}, False, 'no error'),
    ('no_sigmoid_loss', -3.5, True, 'below zero'),
    ('no_sigmoid_loss', torch.tensor(-3.5), True, 'below zero'),
    ('no_sigmoid_loss', -7, False, 'the sum'),
    ('no_sigmoid_loss', 8.5, False, 'absolute value'),
    ('no_sigmoid_loss', 4.5, False, 'swapped'),
    ('no_sigmoid_loss', 0.4910, False, 'with the sigmoid'),
    ('no_sigmoid_loss', 'negative', False, 'as a number'),
    ('grad_twice', 2, True, 'adds into .grad'),
    ('grad_twice', 1, False, 'does not replace'),
    ('grad_twice', 0, False, 'add up'),
    ('grad_twice', float('nan'), False, 'as a number'),
]

@pytest.mark.parametrize('name,answer,ok,words', VALUE_CASES, ids=[f'{c[0]}-{i}' for i, c in enumerate(VALUE_CASES)])
def test_value_feedback(name, answer, ok, words):
    fb = check(name, answer)
    assert fb.ok == ok and words in fb.message, fb
    if not ok:   # never gives the answer away
        right = {'stack_shapes': STACK_RIGHT, 'broadcast_shapes': BROADCAST_RIGHT}.get(name, {})
        assert not any(str(tuple(v)) in fb.message for v in right.values()), fb
        assert '-3.5' not in fb.message and '2.' not in fb.message, fb

def test_feedback_never_shows_code_of_a_solution():
    answers = ['.sqrt() <', 'mom*velocity + params.grad', 'self.wd*p', 'nn.Sequential(nn.Linear', '(f(x + ', 'torch.stack(ts).float()/255']
    for name, fn, ok, _ in FN_CASES:
        fb = check(name, fn, seed=0)
        assert not any(a in fb.message for a in answers), fb

def test_check_refuses_unknown_exercise_and_called_function():
    with pytest.raises(ValueError, match="unknown exercise 'nope'"): check('nope', print)
    assert 'without calling it' in check('is_3_rmse', 0.5).message

# ---- issue 11, section 4: behaviour on fresh inputs, a time limit, the random state kept
def test_inputs_are_drawn_afresh_and_the_seed_repeats_them():
    "An answer that only memorised the verdicts for one draw passes that draw and no other; the reported seed repeats a check."
    x, m3, m7, ref = _rmse_problem(torch.Generator().manual_seed(0))
    memorised = lambda x_, a, b: ref.clone() if x_.ndim == 3 else ref[0].clone()
    assert check('is_3_rmse', memorised, seed=0).ok
    assert not check('is_3_rmse', memorised, seed=1).ok and not check('is_3_rmse', memorised).ok
    seeds = {check('is_3_rmse', memorised).seed for _ in range(3)}
    assert len(seeds) > 1   # drawn from the clock
    assert check('MomentumSGD', momsgd('right'), seed=5).message == check('MomentumSGD', momsgd('right'), seed=5).message

def never_returns(*args):
    while True: pass

def test_a_function_that_never_returns_is_stopped(monkeypatch):
    monkeypatch.setattr(feedback, 'TIME_LIMIT', 0.5)
    start = time.perf_counter()
    fb = check('numerical_grad', never_returns)
    assert not fb.ok and 'did not return within 0.5 seconds' in fb.message, fb
    assert time.perf_counter() - start < 5
    box = {}   # away from the main thread (no SIGALRM there) a watcher thread stops waiting
    t = threading.Thread(target=lambda: box.update(fb=check('simple_net2', never_returns))); t.start(); t.join(10)
    assert 'did not return within' in box['fb'].message
    assert check('numerical_grad', ngrad()).ok   # and the checker works as before afterwards

def test_the_time_limit_is_a_few_seconds():
    assert 1 <= feedback.TIME_LIMIT <= 10

def reseeds(x, a, b):
    torch.manual_seed(0); random.seed(0); np.random.seed(0); torch.rand(10); random.random(); np.random.rand()
    return rmse(x, a) < rmse(x, b)

@pytest.mark.parametrize('name,fn', [('is_3_rmse', reseeds), ('simple_net2', SharedReLU), ('MomentumSGD', momsgd('right')), ('stack_shapes', STACK_RIGHT)])
def test_check_leaves_the_callers_random_numbers_alone(name, fn):
    "A student's next random draws are the same after a check as without it, even if the checked code reseeds."
    def draws(): return torch.rand(3).tolist(), random.random(), np.random.rand()
    torch.manual_seed(123); random.seed(123); np.random.seed(123); expected = draws()
    torch.manual_seed(123); random.seed(123); np.random.seed(123)
    check(name, fn)
    assert draws() == expected

LR_CASES = [  # the scaled roller coaster's limit is 2 / (largest curvature), about 0.87
    (0.85, True, 'to within 10%'), (torch.tensor(0.83), True, 'to within 10%'), (0.88, False, 'diverges slowly'),
    (1.5, False, 'grows without limit'), (3e-5, False, 'time in seconds'), (0.5, False, 'look for the largest'),
    ('fast', False, 'as a number'), (lambda: 0.8, False, 'as a number'), (-0.1, False, 'positive number'), (float('nan'), False, 'positive number'),
]

@pytest.mark.parametrize('lr,ok,words', LR_CASES, ids=[f'largest_lr-{i}' for i in range(len(LR_CASES))])
def test_largest_lr_feedback(lr, ok, words):
    fb = check('largest_lr', lr)
    assert fb.ok == ok and words in fb.message, fb
    assert not any(s in fb.message for s in ('0.87', '0.869', '0.86')), fb  # never gives the limit away

def test_largest_lr_limit_is_where_sgd_starts_to_diverge():
    "The checker's limit agrees with what SGD does on the scaled roller coaster, just below and just above it."
    from mnist37.sgd import apply_step
    t = (torch.arange(20.) - 9.5)/9.5
    speed = torch.randn(20, generator=torch.Generator().manual_seed(0))*3 + 0.75*(torch.arange(20.) - 9.5)**2 + 1
    def final_loss(lr):
        p = torch.tensor([0.3, 0.1, 0.2]).requires_grad_()
        return [apply_step(p, t, speed, lr) for _ in range(1000)][-1]
    limit = _lr_limit(t)
    assert final_loss(0.98*limit) < 10 and final_loss(1.02*limit) > 1e6

class RawParams(nn.Module):   # right maths, but no nn.Linear for the checker to find: said plainly
    def __init__(self): super().__init__(); self.w = nn.Parameter(torch.randn(784, 1))
    def forward(self, x): return x@self.w

def test_a_net_without_linear_modules_is_told_what_the_checker_looks_for():
    fb = check('simple_net2', RawParams, seed=0)
    assert not fb.ok and 'nn.Linear modules' in fb.message, fb
