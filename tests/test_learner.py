"Our Learner: its loader, hooks and errors, and the fit exercise's feedback on right and typical wrong answers."
import pytest, torch
from torch import nn
from mnist37.learner import Batches, Learner, Loaders
from mnist37.exercises import check
from mnist37.checks.learner import check_fit
from mnist37.linear import batch_accuracy, mnist_loss

def make_fit(zero=True, eval_mode=True, train_mode=True, no_grad=True, per_item=True, step=True):
    "A `fit` written right, or with one of the typical mistakes."
    def fit(model, dls, loss_func, opt, metric, epochs):
        out = []
        if not train_mode: model.train()
        for _ in range(epochs):
            if train_mode: model.train()
            for xb, yb in dls.train:
                loss_func(model(xb), yb).backward()
                if step: opt.step()
                if zero: opt.zero_grad()
            if eval_mode: model.eval()
            with torch.set_grad_enabled(not no_grad):
                vals = [(float(metric(model(xb), yb)), len(yb)) for xb, yb in dls.valid]
            out.append(sum(v*n for v, n in vals)/sum(n for _, n in vals) if per_item else sum(v for v, _ in vals)/len(vals))
        return out
    return fit

def not_written(*args): raise NotImplementedError('write your code here')

CASES = [(make_fit(), True, 'same weights and metrics'),
         (make_fit(zero=False), False, 'never zeroed'),
         (make_fit(eval_mode=False), False, 'model.eval()'),
         (make_fit(train_mode=False), False, 'model.train()'),
         (make_fit(no_grad=False), False, 'torch.no_grad()'),
         (make_fit(per_item=False), False, 'averaged the metric over batches'),
         (make_fit(step=False), False, 'opt.step()'),
         (lambda *a: None, False, 'one validation metric per epoch'),
         (lambda model, dls, lf, opt, m, epochs: [0.5, 0.5], False, 'never ran the model on dls.valid'),
         (not_written, False, 'not written yet')]

@pytest.mark.parametrize('entry', ['check', 'check_fit'])
@pytest.mark.parametrize('fn,ok,words', CASES, ids=[c[2].split()[0] + str(i) for i, c in enumerate(CASES)])
def test_fit_feedback(fn, ok, words, entry):
    fb = check('fit', fn) if entry == 'check' else check_fit(fn)   # check_fit: the former name, the same verdicts
    assert fb.ok == ok and words in fb.message, fb
    assert fb.seed is None and 'seed' not in repr(fb)   # one fixed problem: no seed to repeat

def test_check_fit_leaves_the_global_random_state_alone():
    torch.manual_seed(3); a = torch.rand(1)
    torch.manual_seed(3); check_fit(make_fit()); assert torch.equal(torch.rand(1), a)
    assert 'without calling it' in check_fit(0.5).message

def test_batches_cover_every_item_once_and_shuffle_is_seeded():
    x, y = torch.arange(10.).unsqueeze(1), torch.arange(10)
    b = Batches(x, y, bs=4, shuffle=True, seed=1)
    assert len(b) == 3 and [len(yb) for _, yb in b] == [4, 4, 2]
    assert sorted(torch.cat([yb for _, yb in b]).tolist()) == list(range(10))
    assert torch.equal(torch.cat([yb for _, yb in Batches(x, y, 4, True, 1)]), torch.cat([yb for _, yb in Batches(x, y, 4, True, 1)]))
    with pytest.raises(ValueError, match='bs must be'): Batches(x, y, bs=0)

def test_learner_hooks_run_in_order_and_bad_arguments_are_named():
    torch.manual_seed(0)
    x = torch.randn(20, 3); y = (x[:, :1] > 0).float()
    seen = []
    class Log:
        def __getattr__(self, name):
            if name.startswith(('before_', 'after_')): return lambda learn: seen.append(name)
            raise AttributeError(name)
    learn = Learner(Loaders(Batches(x, y, 8), Batches(x, y, 10)), nn.Linear(3, 1), mnist_loss, metrics=batch_accuracy, cbs=[Log()])
    learn.fit(1, 0.1)
    assert seen == ['before_fit', 'before_epoch'] + ['before_batch', 'after_batch']*5 + ['after_epoch', 'after_fit']
    assert learn.recorder.names == ['train_loss', 'valid_loss', 'batch_accuracy'] and len(learn.recorder.values) == 1
    with pytest.raises(ValueError, match='epochs must be'): learn.fit(0, 0.1)
    with pytest.raises(ValueError, match='lr must be a finite positive number, got -1'): learn.fit(1, -1)
    with pytest.raises(TypeError, match='Loaders'): Learner([x, y], nn.Linear(3, 1), mnist_loss)
    mse = Learner(learn.dls, nn.Linear(3, 1), nn.functional.mse_loss)
    with pytest.raises(FloatingPointError, match='smaller learning rate'): mse.fit(5, 1e20)
