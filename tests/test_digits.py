"All ten digits: the MNIST archive and the fallback, softmax and cross-entropy against PyTorch, the confusion matrix, training, and the exercises' feedback."
import tarfile
import pytest, torch
import torch.nn.functional as F
from conftest import make_mnist_archive
from mnist37.datasets.source import DataError, count_pngs, find_mnist_sample, install_archive
from mnist37.datasets.mnist import FALLBACK_DIGITS, MNIST, find_mnist, load_mnist
from mnist37.digits import confusion_matrix, cross_entropy, log_softmax, most_confused, softmax, train_digits
from mnist37.checks.digits import check_cross_entropy, check_softmax
from mnist37.exercises import check

def test_mnist_archive_from_environment_variable_installs_where_untar_data_looks(home, fake_mnist_archive, monkeypatch):
    monkeypatch.setenv('MNIST37_MNIST_ARCHIVE', str(fake_mnist_archive))
    d = find_mnist()
    assert (d.source, d.full, d.path) == ('archive', True, home/'data'/'mnist_png')
    assert count_pngs(d.path, MNIST.counts) == MNIST.counts
    assert str(d).startswith('the full MNIST from archive: 60000 training, 10000 validation images')
    from fastai.data.external import untar_data, URLs, fastai_cfg
    fastai_cfg.cache_clear()
    assert untar_data(URLs.MNIST) == d.path  # the book's own call now works offline
    assert find_mnist().source == 'fastai cache'
    assert find_mnist_sample().source == 'fallback'  # the MNIST_SAMPLE search is not fooled by the other data set

def test_wrong_or_hostile_mnist_archive_is_refused(home, tmp_path, fake_archive):
    small = make_mnist_archive(tmp_path/'small.tgz', counts={f'training/{d}': 2 for d in range(10)})
    with pytest.raises(DataError, match=r"small.tgz is not MNIST: it has .*'training/0': 2"): find_mnist(archive=small)
    with pytest.raises(DataError, match='outside mnist_png/'): install_archive(fake_archive, layout=MNIST)  # MNIST_SAMPLE given as MNIST
    info = tarfile.TarInfo('mnist_png/../../evil.txt'); info.size = 4
    bad = make_mnist_archive(tmp_path/'bad.tgz', counts={'training/0': 1}, extra=[(info, b'evil')])
    with pytest.raises(DataError, match='refusing to extract'): install_archive(bad, layout=MNIST)
    cut = tmp_path/'cut.tgz'; cut.write_bytes(small.read_bytes()[:200])
    with pytest.raises(DataError, match='truncated: copy it again \\(md5 03639f83'): install_archive(cut, layout=MNIST)
    assert not (home/'data'/'mnist_png').exists() and not list((home/'data').glob('.mnist_png.tmp-*'))

def test_fallback_is_stratified_seeded_and_announced(home, tmp_path, monkeypatch):
    d = find_mnist()
    assert (d.source, d.full, d.path.name) == ('fallback', False, 'mnist37_fallback_digits')
    assert count_pngs(d.path, FALLBACK_DIGITS.counts) == FALLBACK_DIGITS.counts
    assert 'OFFLINE FALLBACK' in str(d) and '4000 training, 1000 validation' in str(d)
    names = {s: {f.name for f in d.path.glob(f'{s}/*/*.png')} for s in ('training', 'testing')}
    assert len(names['training']) == 4000 and len(names['testing']) == 1000 and not names['training'] & names['testing']
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path/'other_home'))
    assert {f.name for f in find_mnist().path.glob('testing/*/*.png')} == names['testing']  # the same split every time
    x, y, vx, vy = load_mnist(d.path)
    assert x.shape == (4000, 28, 28) and vx.shape == (1000, 28, 28) and y.bincount().tolist() == [400]*10 and vy.bincount().tolist() == [100]*10
    assert 0 <= x.min() and x.max() <= 1
    acc = train_digits('digits-baseline', (x, y, vx, vy), device='cpu')
    assert 0.6 <= acc <= 0.7, acc
    assert train_digits('digits', (x, y, vx, vy), epochs=3, device='cpu') >= 0.8
    with pytest.raises(ValueError, match="unknown model 'net'"): train_digits('net', (x, y, vx, vy), device='cpu')

@pytest.mark.parametrize('scale', [1., 30., 1e4])
def test_softmax_and_cross_entropy_match_pytorch(scale):
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(16, 10, generator=g)*scale, torch.randint(0, 10, (16,), generator=g)
    assert torch.allclose(softmax(x), torch.softmax(x, -1), atol=1e-6) and torch.allclose(log_softmax(x), F.log_softmax(x, -1), rtol=1e-5, atol=1e-4)
    loss = cross_entropy(x, t)
    assert loss.isfinite() and torch.allclose(loss, F.cross_entropy(x, t), rtol=1e-5)
    x.requires_grad_(); cross_entropy(x, t).backward()
    assert torch.allclose(x.grad, torch.autograd.grad(F.cross_entropy(x, t), x)[0], atol=1e-6)

def test_bad_inputs_are_named():
    x = torch.randn(3, 10)
    with pytest.raises(ValueError, match='whole numbers, one per row'): cross_entropy(x, torch.tensor([1., 2., 3.]))
    with pytest.raises(ValueError, match='between 0 and 9'): cross_entropy(x, torch.tensor([1, 2, 10]))
    with pytest.raises(TypeError, match='float tensor'): softmax(torch.tensor([[1, 2]]))

def test_confusion_matrix_counts_rows_as_truth():
    preds, targs = torch.tensor([0, 1, 1, 2, 1, 0]), torch.tensor([0, 1, 2, 2, 2, 1])
    cm = confusion_matrix(preds, targs, n=3)
    assert cm.tolist() == [[1, 0, 0], [1, 1, 0], [0, 2, 1]]
    assert most_confused(cm, 2) == [(2, 1, 2), (1, 0, 1)]

def stable(x): e = (x - x.max(-1, keepdim=True).values).exp(); return e/e.sum(-1, keepdim=True)
def plain(x): return x.exp()/x.exp().sum(-1, keepdim=True)
def not_written(*a): raise NotImplementedError('write your code here')
def ce(x, t): return -log_softmax(x)[torch.arange(len(t)), t].mean()

CASES = [(check_softmax, (stable, (64, 10)), True, 'do not overflow'),
         (check_softmax, (stable, (64,)), False, 'one probability for every score'),
         (check_softmax, (plain,), False, "subtract each row's largest score"),
         (check_softmax, (lambda x: x.exp()/x.exp().sum(0, keepdim=True),), False, 'each column sums to 1'),
         (check_softmax, (lambda x: x.exp()/x.exp().sum(),), False, 'whole batch'),
         (check_softmax, (lambda x: x.exp()/x.exp().sum(-1),), False, 'raised RuntimeError'),
         (check_softmax, (lambda x: x/x.sum(-1, keepdim=True),), False, 'not softmax'),
         (check_softmax, (not_written,), False, 'not written yet'),
         (check_cross_entropy, (ce,), True, 'same as F.cross_entropy'),
         (check_cross_entropy, (lambda x, t: -stable(x)[torch.arange(len(t)), t].log().mean(),), False, 'log-sum-exp'),
         (check_cross_entropy, (lambda x, t: -stable(x)[torch.arange(len(t)), t].mean(),), False, 'forgot the log'),
         (check_cross_entropy, (lambda x, t: -log_softmax(x).mean(),), False, 'all ten columns'),
         (check_cross_entropy, (lambda x, t: -log_softmax(x)[torch.arange(len(t)), t].sum(),), False, 'rather than the sum'),
         (check_cross_entropy, (lambda x, t: log_softmax(x)[torch.arange(len(t)), t].mean(),), False, 'sign is flipped'),
         (check_cross_entropy, (lambda x, t: -log_softmax(x)[torch.arange(len(t)), t],), False, 'mean over the rows'),
         (check_cross_entropy, (lambda x, t: -log_softmax(x),), False, 'number for every score'),
         (check_cross_entropy, (lambda x, t: ce(x, t).item(),), False, 'no .item()'),
         (check_cross_entropy, ('ce',), False, 'without calling it')]

@pytest.mark.parametrize('checker,args,ok,words', CASES, ids=[f'{c[0].__name__}-{i}' for i, c in enumerate(CASES)])
def test_feedback(checker, args, ok, words):
    fb = checker(*args)
    assert fb.ok == ok and words in fb.message, fb
    assert 'max(-1, keepdim=True)' not in fb.message and 'log_softmax(' not in fb.message  # no answer given away

@pytest.mark.parametrize('checker,args,ok,words', CASES, ids=[f'{c[0].__name__}-{i}' for i, c in enumerate(CASES)])
def test_check_gives_the_same_verdicts_on_fresh_draws(checker, args, ok, words):
    "`check('softmax', ...)`, `check('softmax_shape', ...)`, `check('cross_entropy', ...)`: the former checkers' verdicts, on any draw."
    name = 'softmax' if checker is check_softmax else 'cross_entropy'
    for seed in range(20):
        fb = check('softmax_shape', args[1]) if len(args) > 1 and args[1] != (64, 10) else check(name, args[0], seed=seed)
        assert fb.ok == ok and words in fb.message, (seed, fb)

# ---- the transfer exercises: softmax with a temperature, the 3s-vs-7s loss from logits (issue 19, section 3)
def soft_t(x, t): return stable(x/t)
def log_sig(x): return log_softmax(torch.stack([torch.zeros_like(x), x], -1))   # columns: log(1 - sigmoid), log(sigmoid)
def bce(x, t): ls = log_sig(x); return -(t*ls[:, 1] + (1 - t)*ls[:, 0]).mean()
def bce_sigmoid_log(x, t): return -(t*x.sigmoid().log() + (1 - t)*(1 - x.sigmoid()).log()).mean()

TRANSFER_CASES = [  # exercise, answer, ok, words the feedback must contain
    ('softmax_t', soft_t, True, 'do not overflow'),
    ('softmax_t', lambda x, t: torch.softmax(x/t, -1), True, 'do not overflow'),
    ('softmax_t', lambda x, t: stable(x), False, 'changes nothing'),                 # exp(x)/t, normalised again
    ('softmax_t', lambda x, t: stable(x)/t, False, 'sums to 1/t'),                   # exp(x)/t, not normalised again
    ('softmax_t', lambda x, t: stable(x*t), False, 'multiplied the scores by t'),
    ('softmax_t', lambda x, t: plain(x/t), False, 'overflows'),
    ('softmax_t', lambda x, t: (x/t).softmax(0), False, 'each column sums to 1'),
    ('softmax_t', lambda x, t: (x/t).exp()/(x/t).exp().sum(), False, 'whole batch'),
    ('softmax_t', lambda x, t: stable(x/t)[:, 0], False, 'one probability per score'),
    ('softmax_t', not_written, False, 'not written yet'),
    ('softmax_t_prediction', 'up', True, 'top score takes more'),
    ('softmax_t_prediction', 'down', False, 'ten times wider'),
    ('softmax_t_prediction', 0.1, False, "'up' or 'down'"),
    ('bce', bce, True, 'also on logits of 10,000'),
    ('bce', lambda x, t: F.binary_cross_entropy_with_logits(x, t), True, 'also on logits of 10,000'),
    ('bce', bce_sigmoid_log, False, 'inf or nan'),
    ('bce', lambda x, t: F.binary_cross_entropy(x.sigmoid(), t), False, 'no clamping'),   # PyTorch clamps its log at -100
    ('bce', lambda x, t: bce(x, 1 - t), False, 'targets are flipped'),
    ('bce', lambda x, t: bce(x, t)*len(t), False, 'rather than the sum'),
    ('bce', lambda x, t: -bce(x, t), False, 'sign is flipped'),
    ('bce', lambda x, t: -(t*log_sig(x)[:, 1] + (1 - t)*log_sig(x)[:, 0]), False, 'one number for the batch'),
    ('bce', lambda x, t: bce(x, t).item(), False, 'no .item()'),
    ('bce', not_written, False, 'not written yet')]

@pytest.mark.parametrize('name,answer,ok,words', TRANSFER_CASES, ids=[f'{c[0]}-{i}' for i, c in enumerate(TRANSFER_CASES)])
def test_transfer_exercises_feedback_on_fresh_draws(name, answer, ok, words):
    "Each mistake is named, and the right answers pass, on every draw (the inputs are built so that no mistake can match by chance)."
    for seed in range(20):
        fb = check(name, answer, seed=seed)
        assert fb.ok == ok and words in fb.message, (seed, fb)
        assert 'max(-1, keepdim=True)' not in fb.message and 'log_softmax(' not in fb.message and 'stack(' not in fb.message
