"The pieces 07 and 10 now show one at a time: the loaders' length and batches, check_xy, the book's loss, sgd_epoch."
import copy, math
import pytest, torch
from torch import nn
from mnist37.fast import TensorLoader, book_accuracy, book_loss, check_xy, sgd_epoch
from mnist37.learner import Batches
from mnist37.linear import batch_accuracy, mnist_loss

def data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 5, generator=g), (torch.rand(n, 1, generator=g) > .5).float()

@pytest.mark.parametrize('n,bs', [(1, 4), (4, 4), (5, 4), (12396, 256), (7, 1), (3, 10)])
@pytest.mark.parametrize('make', [TensorLoader, Batches])
def test_len_counts_the_last_smaller_batch(make, n, bs):
    x, y = data(n)
    for shuffle in (False, True):
        dl = make(x, y, bs=bs, shuffle=shuffle, seed=1)
        sizes = [len(yb) for _, yb in dl]
        assert len(dl) == len(sizes) == math.ceil(n / bs)
        assert sizes[:-1] == [bs]*(len(sizes) - 1) and sizes[-1] == n - bs*(len(sizes) - 1)

@pytest.mark.parametrize('make', [TensorLoader, Batches])
def test_every_item_once_slices_in_order_and_a_seeded_order_when_shuffled(make):
    x, y = data(10); x[:, 0] = torch.arange(10.)
    plain = list(make(x, y, bs=4))
    assert torch.equal(torch.cat([xb for xb, _ in plain]), x)
    assert all(xb.data_ptr() == x[4*i].data_ptr() for i, (xb, _) in enumerate(plain))  # slices: no copy
    orders = [[torch.cat([xb[:, 0] for xb, _ in make(x, y, bs=4, shuffle=True, seed=3)]) for _ in range(2)] for _ in range(2)]
    assert sorted(orders[0][0].tolist()) == list(range(10))
    assert torch.equal(orders[0][0], orders[1][0]) and torch.equal(orders[0][1], orders[1][1])  # seeded: repeatable
    dl = make(x, y, bs=4, shuffle=True, seed=3)
    e1, e2 = [torch.cat([xb[:, 0] for xb, _ in dl]) for _ in range(2)]
    assert not torch.equal(e1, e2)   # a new order each epoch

def test_check_xy_names_what_is_wrong():
    x, y = data(6)
    check_xy(x, y)
    with pytest.raises(ValueError, match=r'y \(6,\).*unsqueeze\(1\)'): check_xy(x, y.squeeze(1))
    with pytest.raises(ValueError, match='one target per row'): check_xy(x, y[:5])
    with pytest.raises(ValueError, match='0 \\(a 7\\) or 1 \\(a 3\\)'): check_xy(x, y + 2)
    bad = x.clone(); bad[2, 3] = float('inf')
    with pytest.raises(ValueError, match='x has 1 NaN or infinite'): check_xy(bad, y)
    with pytest.raises(ValueError, match='x is empty'): check_xy(x[:0], y[:0])

def test_book_loss_and_accuracy_match_the_checked_ones():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        s, t = torch.randn(16, 1, generator=g)*3, (torch.rand(16, 1, generator=g) > .5).float()
        torch.testing.assert_close(book_loss(s, t), mnist_loss(s, t))
        torch.testing.assert_close(book_accuracy(s, t), batch_accuracy(s, t))

def test_sgd_epoch_is_plain_sgd_on_mnist_loss():
    torch.manual_seed(0)
    x, y = data(20)
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 1)); ref = copy.deepcopy(model)
    loss = sgd_epoch(model, TensorLoader(x, y, bs=8), 0.5, list(model.parameters()))
    opt, losses = torch.optim.SGD(ref.parameters(), lr=0.5), []
    for i in range(0, 20, 8):
        l = mnist_loss(ref(x[i:i+8]), y[i:i+8]); l.backward(); opt.step(); opt.zero_grad(); losses.append(l.item())
    for p, q in zip(model.parameters(), ref.parameters()): torch.testing.assert_close(p, q)
    assert loss == pytest.approx(sum(losses)/3, rel=1e-5)
