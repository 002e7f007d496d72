"The exercise checker: right answers, recognised mistakes, no answers given away, fresh inputs, a time limit, the caller's random state kept (student copies: test_student.py)."
import json, random, threading, time
from pathlib import Path
import nbformat, numpy as np, pytest, torch
import torch.nn.functional as F
from torch import nn
import mnist37.checks.feedback as feedback
from mnist37.baseline import is_3, mnist_distance
from mnist37.checks.pixels import _NEAREST_MISTAKES, _nearest_gaps, _nearest_problem
from mnist37.checks.sgd import _lr_limit
from mnist37.exercises import check

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [0, 1, 12345, None]   # None: drawn from the clock, as a student's check is

def not_written(*args): raise NotImplementedError('write your code here')

# ---- functions: a right answer and typical mistakes, for each exercise
rmse = lambda x, m: ((x - m)**2).mean((-1, -2)).sqrt()
l1 = lambda x, m: (x - m).abs().mean((-1, -2))

def batch_view(x): return x.view(-1, 1, 28, 28)   # a batch as in 01's exercise 1: each image against every training digit
def each(x, ts): return l1(x.unsqueeze(-3), ts)   # (..., N): each image's distance to each of `ts`
def nearest_if(x, threes, sevens):   # right: one image on its own, a batch viewed as (B, 1, 28, 28)
    if x.ndim == 2: return mnist_distance(x, threes).min() < mnist_distance(x, sevens).min()
    return mnist_distance(batch_view(x), threes).min(1).values < mnist_distance(batch_view(x), sevens).min(1).values
def nearest(kind='right'):
    "is_3_nearest right (for one image or a batch), or with one typical mistake."
    def f(x, threes, sevens):
        d3, d7 = each(x, threes), each(x, sevens)
        if kind == 'mean_digit': return is_3(x, threes.mean(0), sevens.mean(0))
        if kind == 'everything': return d3.min() < d7.min()
        pick = {'max': lambda d: d.amax(-1), 'mean': lambda d: d.mean(-1)}.get(kind, lambda d: d.amin(-1))
        return pick(d3) > pick(d7) if kind == 'flipped' else pick(d3) - pick(d7) if kind == 'gaps' else pick(d3) < pick(d7)
    return f
def nearest_argmin(x, threes, sevens): return each(x, torch.cat([threes, sevens])).argmin(-1) < len(threes)   # right too
def nearest_one_only(x, threes, sevens): return mnist_distance(x, threes).min() < mnist_distance(x, sevens).min()
def nearest_batch_axis(x, threes, sevens):   # the smallest along the batch's axis
    return mnist_distance(batch_view(x), threes).min(0).values < mnist_distance(batch_view(x), sevens).min(0).values
def nearest_batch_only(x, threes, sevens):   # one image gives shape (1,)
    return mnist_distance(batch_view(x), threes).min(1).values < mnist_distance(batch_view(x), sevens).min(1).values
def nearest_len_view(x, threes, sevens):   # one image: view(28, 1, 28, 28) fails
    v = x.view(len(x), 1, 28, 28)
    return mnist_distance(v, threes).min(1).values < mnist_distance(v, sevens).min(1).values
def nearest_mse(x, threes, sevens):   # squared differences instead of mnist_distance's absolute ones
    return (rmse(x.unsqueeze(-3), threes)**2).amin(-1) < (rmse(x.unsqueeze(-3), sevens)**2).amin(-1)
def nearest_rmse(x, threes, sevens): return rmse(x.unsqueeze(-3), threes).amin(-1) < rmse(x.unsqueeze(-3), sevens).amin(-1)
def nearest_float(x, threes, sevens): return nearest()(x, threes, sevens).float()   # right verdicts, as 0./1. numbers
def nearest_in_place(x, threes, sevens): return nearest()(x.sub_(0.1), threes - 0.1, sevens - 0.1)   # right verdicts, x changed

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
    ('is_3_nearest', nearest(), True, 'the nearest-neighbour verdicts'),
    ('is_3_nearest', nearest_if, True, 'the nearest-neighbour verdicts'),
    ('is_3_nearest', nearest_argmin, True, 'the nearest-neighbour verdicts'),
    ('is_3_nearest', nearest('mean_digit'), False, 'you compared with the mean digits'),
    ('is_3_nearest', nearest('max'), False, 'you kept the farthest training digit'),
    ('is_3_nearest', nearest('mean'), False, 'you averaged the distances'),
    ('is_3_nearest', nearest('flipped'), False, 'the verdicts are the wrong way round'),
    ('is_3_nearest', nearest_one_only, False, 'one image works, but a batch (16, 28, 28) does not'),
    ('is_3_nearest', nearest_batch_axis, False, 'one per training digit: you took the smallest distance along the axis of the batch'),
    ('is_3_nearest', nearest('everything'), False, 'one for the whole batch'),
    ('is_3_nearest', nearest_batch_only, False, 'a batch works, but one image (28, 28) should give one True/False'),
    ('is_3_nearest', nearest_len_view, False, 'a batch works, but one image (28, 28) does not: your function raised'),
    ('is_3_nearest', nearest('gaps'), False, 'return True/False (what a comparison with < gives), one per image, not numbers'),
    ('is_3_nearest', nearest_float, False, 'return True/False (what a comparison with < gives), one per image, not numbers'),
    ('is_3_nearest', nearest_mse, False, 'you measured with squared differences (as RMSE does)'),
    ('is_3_nearest', nearest_rmse, False, 'you measured with squared differences (as RMSE does)'),
    ('is_3_nearest', nearest_in_place, False, 'changed `x` itself'),
    ('is_3_nearest', not_written, False, 'not written yet'),
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
IDEALS_RIGHT = {'a': 'error', 'b': (10, 2, 28, 28), 'c': (10, 2), 'd': (10,)}
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
    ('ideals_shapes', IDEALS_RIGHT, True, 'all 4 shapes'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'a': 'Error', 'b': torch.Size([10, 2, 28, 28]), 'c': [10, 2], 'd': 10}, True, 'all 4 shapes'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'a': (10, 28, 28)}, False, '2 ideals do not stretch to 10 images'),   # 2 stretched to 10
    ('ideals_shapes', {**IDEALS_RIGHT, 'a': (2, 28, 28)}, False, '10 images do not shrink to 2'),   # 10 stretched to 2
    ('ideals_shapes', {**IDEALS_RIGHT, 'a': (10, 2, 28, 28)}, False, 'adds no axis in the middle'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'a': (20, 28, 28)}, False, 'line the shapes up from the right'),   # the rule
    ('ideals_shapes', {**IDEALS_RIGHT, 'b': 'error'}, False, 'not the left'),   # shapes lined up from the left
    ('ideals_shapes', {**IDEALS_RIGHT, 'b': (10, 1, 28, 28)}, False, 'the axis of size 1 stretches'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'b': (10, 28, 28)}, False, 'as many axes as the longer shape'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'c': (10, 2, 28)}, False, 'removes both'),   # mean removing one axis only
    ('ideals_shapes', {**IDEALS_RIGHT, 'c': (10,)}, False, 'the axes before them stay'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'c': (10, 2, 1, 1)}, False, 'without keepdim=True'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'd': (10, 1)}, False, 'argmin removes the axis it searches along'),   # argmin keeping its axis
    ('ideals_shapes', {**IDEALS_RIGHT, 'd': (2,)}, False, 'once for each image'),   # argmin along the wrong axis
    ('ideals_shapes', {**IDEALS_RIGHT, 'd': ()}, False, 'with no axis given'),
    ('ideals_shapes', {**IDEALS_RIGHT, 'd': (5, 5)}, False, 'removes axis 1'),   # the rule
    ('ideals_shapes', {'a': 'error'}, False, 'no prediction for b, c, d'),
    ('ideals_shapes', [(10, 2)], False, 'as a dict'),
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
        right = {'stack_shapes': STACK_RIGHT, 'ideals_shapes': IDEALS_RIGHT}.get(name, {})
        assert not any(str(v if isinstance(v, str) else tuple(v)) in fb.message for v in right.values()), fb
        assert '-3.5' not in fb.message and '2.' not in fb.message, fb

def test_grad_twice_hint_is_about_grad_not_images():
    "A wrong answer to grad_twice with no known mistake gets a hint about .grad, not no_sigmoid_loss's 'image by image'."
    fb = check('grad_twice', 4)
    assert not fb.ok and 'image' not in fb.message and '.grad' in fb.message, fb
    assert 'image by image' in check('no_sigmoid_loss', 7).message   # the other exercise keeps its hint

def solution_lines(min_len=20):
    "Each code line (comment cut off) of the instructors' solution blocks in the lesson's notebooks."
    import json
    from mnist37.checks.scan import BEGIN, END
    found = []
    for nb in sorted((Path(__file__).parent.parent/'nbs').glob('[01]*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            inside = False
            for l in ''.join(c['source']).splitlines():
                s = l.split('  #')[0].strip().removeprefix('return ')
                if l.strip() in (BEGIN, END): inside = l.strip() == BEGIN
                elif inside and len(s) >= min_len and not s.startswith(('#', 'print(', 'def ')): found.append(s)
    return found

def test_feedback_never_shows_code_of_a_solution():
    "No verdict quotes a line of an instructors' solution (lines of 20 characters or more: shorter ones are hints' words)."
    answers = solution_lines()
    assert len(answers) >= 30 and 'e / e.sum(-1, keepdim=True)' in answers, answers
    for name, fn, ok, _ in FN_CASES:
        fb = check(name, fn, seed=0)
        assert not [a for a in answers if a in fb.message], (fb, [a for a in answers if a in fb.message])

def test_check_refuses_unknown_exercise_and_called_function():
    with pytest.raises(ValueError, match="unknown exercise 'nope'"): check('nope', print)
    assert 'without calling it' in check('is_3_nearest', 0.5).message

# ---- issue 11, section 4: behaviour on fresh inputs, a time limit, the random state kept
def test_inputs_are_drawn_afresh_and_the_seed_repeats_them():
    "An answer that only memorised the verdicts for one draw passes that draw and no other; the reported seed repeats a check."
    ref = _nearest_problem(torch.Generator().manual_seed(0))[3]['right']
    memorised = lambda x_, a, b: ref.clone() if x_.ndim == 3 else ref[0].clone()
    assert check('is_3_nearest', memorised, seed=0).ok
    assert not [s for s in range(1, 101) if check('is_3_nearest', memorised, seed=s).ok]
    seeds = {check('is_3_nearest', memorised).seed for _ in range(3)}
    assert len(seeds) > 1 and 0 not in seeds   # drawn from the clock
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

def reseeds(x, a, b):
    torch.manual_seed(0); random.seed(0); np.random.seed(0); torch.rand(10); random.random(); np.random.rand()
    return nearest()(x, a, b)

@pytest.mark.parametrize('name,fn', [('is_3_nearest', reseeds), ('simple_net2', SharedReLU), ('MomentumSGD', momsgd('right')), ('stack_shapes', STACK_RIGHT)])
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

# ---- 01's exercises (issue 19, section 3): each typical mistake has a sentence of its own, on every draw
def test_every_kind_of_nearest_verdict_differs_from_every_other_on_every_draw():
    "The right verdicts, those of each mistake and the flipped ones differ on each drawn batch, so the named mistake is the one made."
    for seed in range(300):
        x, threes, sevens, v = _nearest_problem(torch.Generator().manual_seed(seed))
        assert set(v) == {'right', 'mean_digit', 'max', 'mean_distance', 'squared', 'flipped'}
        for a, b in [(a, b) for a in v for b in v if a < b]: assert not torch.equal(v[a], v[b]), (seed, a, b)
        assert 0 < v['right'].sum() < len(x) and torch.equal(v['right'], nearest()(x, threes, sevens))
        assert all(g.abs().min() > 1e-3 for g in _nearest_gaps(x, threes, sevens).values())   # no verdict on a knife edge

@pytest.mark.parametrize('name,cases', [('is_3_nearest', [c for c in FN_CASES if c[0] == 'is_3_nearest']),
                                        ('ideals_shapes', [c for c in VALUE_CASES if c[0] == 'ideals_shapes'])])
def test_each_recognised_mistake_of_01_gets_a_sentence_of_its_own(name, cases):
    wrong = [(answer, words) for _, answer, ok, words in cases if not ok and 'not written' not in words]
    messages = [check(name, answer, seed=3).message for answer, _ in wrong]
    assert all(words in m for (_, words), m in zip(wrong, messages))
    assert len(set(messages)) == len({words for _, words in wrong}), messages   # mistakes with the same words share one

def test_nearest_measured_with_squared_differences_is_named_on_every_draw():
    "MSE and RMSE keep the nearest digit as they measure it, not as mnist_distance does: never Correct!, named on seeds 0-99."
    for fn in (nearest_mse, nearest_rmse):
        wrong = [s for s in range(100) if (fb := check('is_3_nearest', fn, seed=s)).ok or fb.message != _NEAREST_MISTAKES['squared']]
        assert not wrong, (fn.__name__, wrong)

def test_nearest_returning_numbers_is_told_to_return_true_false():
    "0./1. numbers (a comparison turned into floats) and the distances themselves get one message: return True/False."
    for fn in (nearest_float, nearest('gaps')):
        fb = check('is_3_nearest', fn, seed=0)
        assert not fb.ok and fb.message == 'return True/False (what a comparison with < gives), one per image, not numbers', fb

def test_01_exercises_left_as_stubs_say_not_written():
    "An untouched student copy of 01: `my_shapes = ...` and a function that raises NotImplementedError."
    assert check('ideals_shapes', ...).message.startswith('this exercise is not written yet')
    fb = check('is_3_nearest', not_written, seed=0)
    assert not fb.ok and fb.message == feedback.NOT_WRITTEN and fb.seed is None
