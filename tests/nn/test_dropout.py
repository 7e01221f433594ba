import pytest
import torch
from torch import nn

from trainwell.nn.dropout import ClassicDropout, make_dropout


@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_training_and_evaluation_have_the_same_expected_activation(mode):
    torch.manual_seed(0)
    p = 0.3
    layer = make_dropout(mode, p)
    x = torch.rand(1, 50, dtype=torch.float64) + 0.5
    samples = torch.stack([layer.train()(x) for _ in range(20000)])  # (draws, 1, 50)
    expected = layer.eval()(x)
    # the mean over 20000 masks is within 4 standard errors of the eval output
    se = (x * (1 - p) ** 0.5 * p ** 0.5 * (1 if mode == "classic" else 1 / (1 - p))) / 20000 ** 0.5
    assert ((samples.mean(0) - expected).abs() < 4 * se).all()


def test_classic_scales_at_evaluation_and_inverted_in_training():
    x = torch.ones(4, 1000)
    classic, inverted = ClassicDropout(0.25), make_dropout("inverted", 0.25)
    assert set(classic.train()(x).unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(classic.eval()(x), torch.full_like(x, 0.75))
    assert set(inverted.train()(x).unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
    torch.testing.assert_close(inverted.eval()(x), x)
    assert isinstance(inverted, nn.Dropout)


def test_eval_outputs_match_torch_and_gradients_follow_the_mask():
    x = torch.randn(3, 8, dtype=torch.float64)
    torch.testing.assert_close(make_dropout("inverted", 0.5).eval()(x), nn.Dropout(0.5).eval()(x))
    torch.manual_seed(1)
    layer = ClassicDropout(0.5).train()
    xg = x.clone().requires_grad_()
    y = layer(xg)
    y.sum().backward()
    torch.testing.assert_close(xg.grad, (y != 0).double())
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ClassicDropout(1.0)
