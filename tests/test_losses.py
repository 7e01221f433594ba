import pytest
import torch
import torch.nn.functional as F

from trainwell.errors import TrainwellError
from trainwell.losses import balanced_weights, make_loss

torch.manual_seed(0)
LOGITS = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
Y = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2])


def _grad(loss):
    (g,) = torch.autograd.grad(loss, LOGITS)
    return g


def test_weighted_cross_entropy_matches_torch_with_balanced_weights():
    counts = torch.bincount(Y, minlength=3)
    loss = make_loss("weighted_cross_entropy", 3, counts)
    w = balanced_weights(counts).double()
    torch.testing.assert_close(w, torch.tensor([12 / 24, 12 / 9, 12 / 3], dtype=torch.float64))  # sklearn's rule
    expected = F.cross_entropy(LOGITS, Y, weight=w)
    torch.testing.assert_close(loss(LOGITS, Y), expected)
    torch.testing.assert_close(_grad(loss(LOGITS, Y)), _grad(expected))
    given = make_loss("weighted_cross_entropy", 3, counts, weights=[1.0, 2.0, 3.0])
    torch.testing.assert_close(given(LOGITS, Y),
                               F.cross_entropy(LOGITS, Y, weight=torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)))
    with pytest.raises(TrainwellError, match="3 finite numbers"):
        make_loss("weighted_cross_entropy", 3, counts, weights=[1.0, 2.0])


def test_bce_and_mse_match_torch():
    onehot = F.one_hot(Y, 3).double()
    torch.testing.assert_close(make_loss("bce", 3)(LOGITS, Y), F.binary_cross_entropy(torch.sigmoid(LOGITS), onehot))
    torch.testing.assert_close(make_loss("mse", 3)(LOGITS, Y), F.mse_loss(LOGITS.softmax(1), onehot))
    torch.testing.assert_close(make_loss("mse", 3, output="sigmoid")(LOGITS, Y),
                               F.mse_loss(torch.sigmoid(LOGITS), onehot))


def test_naive_cross_entropy_equals_the_stable_one_until_log_of_zero():
    naive, stable = make_loss("naive_cross_entropy", 3), make_loss("cross_entropy", 3)
    torch.testing.assert_close(naive(LOGITS, Y), stable(LOGITS, Y))
    big = torch.tensor([[200.0, 0.0, -200.0]], requires_grad=True)  # float32: e^-400 underflows to 0
    assert torch.isinf(naive(big, torch.tensor([2]))) and torch.isfinite(stable(big, torch.tensor([2])))
    naive(big, torch.tensor([2])).backward()
    assert not torch.isfinite(big.grad).all()


def test_sequence_logits_take_the_cross_entropy_layout():
    logits = torch.randn(4, 5, 7)  # (batch, classes, steps)
    y = torch.randint(0, 5, (4, 7))
    torch.testing.assert_close(make_loss("cross_entropy", 5)(logits, y), F.cross_entropy(logits, y))
    assert make_loss("bce", 5)(logits, y).shape == ()


def test_unknown_loss_option_is_named():
    with pytest.raises(TrainwellError, match="loss 'bce' has no option weights"):
        make_loss("bce", 3, weights="balanced")
