"The exercise checker (right answers, recognised mistakes, no answers given away) and student copies."
import json
from pathlib import Path
import nbformat, pytest, torch
from torch import nn
from mnist37.exercises import check
from mnist37.student import BEGIN, END, STUB, student_copies
from mnist37.linear import calc_grad

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_TEXTS = ['(a - b).abs().mean((-1, -2))', '((a - b)**2).mean((-1, -2)).sqrt()', 'torch.where(targets == 1',
                  'p.data -= p.grad*lr', 'nn.Sequential(nn.Linear']

def right_epoch(model, dl, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params: p.data -= p.grad*lr; p.grad.zero_()

def epoch(sign=-1, zero=True, inplace_leaf=False):
    def f(model, dl, lr, params):
        for xb, yb in dl:
            calc_grad(xb, yb, model)
            for p in params:
                if inplace_leaf: p -= p.grad*lr
                else: p.data += sign*p.grad*lr
                if zero: p.grad.zero_()
    return f

def not_written(*args): raise NotImplementedError('write your code here')

CASES = [  # exercise, function, ok, words the feedback must contain
    ('mnist_distance', lambda a, b: (a - b).abs().mean((-1, -2)), True, 'one distance per image'),
    ('mnist_distance', lambda a, b: (a - b).abs().mean(0), False, 'shape (28, 28)'),
    ('mnist_distance', lambda a, b: (a - b).abs().mean(), False, 'averaged over everything'),
    ('mnist_distance', lambda a, b: (a - b).mean((-1, -2)), False, 'take .abs()'),
    ('mnist_distance', lambda a, b: ((a - b)**2).mean((-1, -2)).sqrt(), False, 'root mean squared'),
    ('mnist_distance', lambda a, b: torch.stack([(x - b).abs().mean() for x in a]), False, 'use broadcasting'),
    ('mnist_distance', lambda a, b: (a - b).abs().mean((-1, -2)).tolist(), False, 'returned a list'),
    ('mnist_distance', not_written, False, 'not written yet'),
    ('rmse_distance', lambda a, b: ((a - b)**2).mean((-1, -2)).sqrt(), True, 'one distance per image'),
    ('rmse_distance', lambda a, b: ((a - b)**2).mean((-1, -2)), False, 'square root'),
    ('rmse_distance', lambda a, b: (a - b).abs().mean((-1, -2)), False, 'mean absolute difference'),
    ('mnist_loss', lambda p, t: torch.where(t == 1, 1 - p.sigmoid(), p.sigmoid()).mean(), True, 'gradient matches'),
    ('mnist_loss', lambda p, t: torch.where(t == 1, 1 - p, p).mean(), False, '.sigmoid()'),
    ('mnist_loss', lambda p, t: torch.where(t == 1, p.sigmoid(), 1 - p.sigmoid()).mean(), False, 'swapped'),
    ('mnist_loss', lambda p, t: torch.where(t == 1, 1 - p.sigmoid(), p.sigmoid()), False, 'one number for the whole batch'),
    ('mnist_loss', lambda p, t: torch.where(t == 1, 1 - p.sigmoid(), p.sigmoid()).sum(), False, '.sum()'),
    ('mnist_loss', lambda p, t: ((p.sigmoid() > 0.5).float() == t).float().mean(), False, 'no gradient'),
    ('mnist_loss', lambda p, t: torch.where(t == 1, 1 - p.sigmoid(), p.sigmoid()).mean().item(), False, 'no .item()'),
    ('mnist_loss', lambda p, t: torch.where(t.squeeze() == 1, 1 - p.sigmoid(), p.sigmoid()).mean(), False, 'differs'),
    ('train_epoch', right_epoch, True, 'same parameters as the lesson'),
    ('train_epoch', epoch(zero=False), False, 'never reset'),
    ('train_epoch', epoch(sign=+1), False, 'up the slope'),
    ('train_epoch', lambda model, dl, lr, params: None, False, 'did not change'),
    ('train_epoch', epoch(inplace_leaf=True), False, 'torch.no_grad()'),
    ('simple_net2', lambda: nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 1)), True, 'ReLU after each'),
    ('simple_net2', lambda: nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 30), nn.Linear(30, 1)), False, 'just one linear layer'),
    ('simple_net2', lambda: nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1)), False, '2 linear layers'),
    ('simple_net2', lambda: nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 2)), False, 'must have 1 output'),
    ('simple_net2', lambda: nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 1), nn.ReLU()), False, 'ReLU after the last'),
    ('simple_net2', lambda: nn.Sequential(nn.Linear(700, 30), nn.ReLU(), nn.Linear(30, 1)), False, 'cannot take a batch'),
]

@pytest.mark.parametrize('name,fn,ok,words', CASES, ids=[f'{c[0]}-{i}' for i, c in enumerate(CASES)])
def test_feedback(name, fn, ok, words):
    fb = check(name, fn)
    assert fb.ok == ok and words in fb.message, fb
    assert not any(s in fb.message for s in SOLUTION_TEXTS), fb  # never gives the answer away
    assert repr(fb).startswith('Correct!' if ok else 'Not yet:')

def test_check_refuses_unknown_exercise_and_called_function():
    with pytest.raises(ValueError, match="unknown exercise 'nope'"): check('nope', print)
    assert 'without calling it' in check('mnist_loss', 0.5).message

def test_student_copies_strip_solutions_and_outputs(tmp_path):
    paths = student_copies(ROOT/'nbs', tmp_path)
    assert len(paths) == len(list((ROOT/'nbs').glob('[0-9]*.ipynb')))
    stubs = 0
    for p in paths:
        nbformat.validate(nbformat.read(p, as_version=4))
        orig, copy = (json.loads(f.read_text()) for f in (ROOT/'nbs'/p.name, p))
        assert len(orig['cells']) == len(copy['cells'])
        for o, c in zip(orig['cells'], copy['cells']):
            src, osrc = ''.join(c['source']), ''.join(o['source'])
            assert not c.get('outputs')
            if c['cell_type'] == 'markdown': assert src == osrc
            elif BEGIN in [l.strip() for l in osrc.splitlines()]:
                stubs += src.count(STUB); assert not {BEGIN, END} & {l.strip() for l in src.splitlines()}
            else: assert src == osrc.rstrip('\n')
    assert stubs >= 7

def _run_until_first_exercise(nb_path):
    "Execute a notebook's code cells (skipping #| slow / #| cuda, as nbdev_test does) until the first exercise stub."
    from execnb.shell import CaptureShell
    sh = CaptureShell()
    for cell in json.loads(nb_path.read_text())['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] != 'code' or src.startswith(('#| slow', '#| cuda')): continue
        if STUB in src: return True
        sh.run(src)
        assert not sh.exc, f'{nb_path.name}: {sh.exc!r} in\n{src[:300]}'
    return False

def test_student_copies_run_up_to_their_first_exercise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with_exercises = [p for p in student_copies(ROOT/'nbs', tmp_path/'student') if STUB in p.read_text()]
    assert {p.name for p in with_exercises} >= {'01_pixel_similarity.ipynb', '03_linear.ipynb', '05_neural_net.ipynb'}
    for p in with_exercises: assert _run_until_first_exercise(p)

class GoodOptim:
    def __init__(self, params, lr): self.params, self.lr = list(params), lr
    def step(self):
        for p in self.params: p.data -= p.grad*self.lr
    def zero_grad(self):
        for p in self.params: p.grad = None

class GeneratorOptim(GoodOptim):  # keeps the generator: only the first step sees the parameters
    def __init__(self, params, lr): self.params, self.lr = params, lr

class NoZeroOptim(GoodOptim):
    def zero_grad(self): pass

class NoStepOptim:
    def __init__(self, params, lr): pass

def step_right(p, lr): p.data -= lr*p.grad; p.grad = None
def step_no_clear(p, lr): p.data -= lr*p.grad
def step_up(p, lr): p.data += lr*p.grad
def step_no_lr(p, lr): p.data -= p.grad
def step_leaf(p, lr): p -= lr*p.grad

MORE = [
    ('stack_digits', lambda ts: torch.stack(ts).float()/255, True, 'between 0 and 1'),
    ('stack_digits', lambda ts: torch.stack(ts).float(), False, 'divide by 255'),
    ('stack_digits', lambda ts: torch.stack(ts), False, '.float()'),
    ('stack_digits', lambda ts: torch.cat(ts).float()/255, False, 'torch.stack adds a new first axis'),
    ('stack_digits', lambda ts: [t.float()/255 for t in ts], False, 'returned a list'),
    ('sgd_step', step_right, True, 'gradient is cleared'),
    ('sgd_step', step_no_clear, False, 'not cleared'),
    ('sgd_step', step_up, False, 'up the slope'),
    ('sgd_step', step_no_lr, False, 'use the learning rate'),
    ('sgd_step', step_leaf, False, 'torch.no_grad()'),
    ('BasicOptim', GoodOptim, True, 'same parameters'),
    ('BasicOptim', GeneratorOptim, False, 'list(params)'),
    ('BasicOptim', NoZeroOptim, False, 'clear every gradient'),
    ('BasicOptim', NoStepOptim, False, 'no step() method'),
]

@pytest.mark.parametrize('name,fn,ok,words', MORE, ids=[f'{c[0]}-{i}' for i, c in enumerate(MORE)])
def test_more_feedback(name, fn, ok, words):
    fb = check(name, fn)
    assert fb.ok == ok and words in fb.message, fb

def test_check_leaves_the_callers_random_numbers_alone():
    "Checking an optimizer must not reseed the global generator: a student's next random draw stays the same."
    torch.manual_seed(123); expected = torch.rand(3)
    torch.manual_seed(123)
    assert check('BasicOptim', GoodOptim).ok
    assert torch.equal(torch.rand(3), expected)

LR_CASES = [  # the scaled roller coaster's limit is 2 / (largest curvature), about 0.87
    (0.85, True, 'to within 10%'),
    (torch.tensor(0.83), True, 'to within 10%'),
    (0.88, False, 'diverges slowly'),
    (1.5, False, 'grows without limit'),
    (3e-5, False, 'time in seconds'),
    (0.5, False, 'look for the largest'),
    ('fast', False, 'as a number'),
    (lambda: 0.8, False, 'as a number'),
    (-0.1, False, 'positive number'),
    (float('nan'), False, 'positive number'),
]

@pytest.mark.parametrize('lr,ok,words', LR_CASES, ids=[f'largest_lr-{i}' for i in range(len(LR_CASES))])
def test_largest_lr_feedback(lr, ok, words):
    fb = check('largest_lr', lr)
    assert fb.ok == ok and words in fb.message, fb
    assert not any(s in fb.message for s in ('0.87', '0.869', '0.86')), fb  # never gives the limit away

def test_largest_lr_limit_is_where_sgd_starts_to_diverge():
    "The checker's limit agrees with what SGD does on the scaled roller coaster, just below and just above it."
    from mnist37.exercises import _lr_limit
    from mnist37.sgd import apply_step
    t = (torch.arange(20.) - 9.5)/9.5
    speed = torch.randn(20, generator=torch.Generator().manual_seed(0))*3 + 0.75*(torch.arange(20.) - 9.5)**2 + 1
    def final_loss(lr):
        p = torch.tensor([0.3, 0.1, 0.2]).requires_grad_()
        return [apply_step(p, t, speed, lr) for _ in range(1000)][-1]
    limit = _lr_limit(t)
    assert final_loss(0.98*limit) < 10 and final_loss(1.02*limit) > 1e6
