import pytest
import torch

from trainwell.errors import TrainwellError
from trainwell.nn.activations import ACTIVATIONS, Maxout, make_activation, width_factor


def test_maxout_is_the_maximum_of_its_pieces():
    torch.manual_seed(0)
    x = torch.randn(5, 12, dtype=torch.float64)  # 4 units of 3 pieces
    out = Maxout(3)(x)
    expected = torch.stack([x[:, 3 * j:3 * j + 3].max(1).values for j in range(4)], dim=1)
    assert torch.equal(out, expected)
    conv = torch.randn(2, 6, 7, dtype=torch.float64)  # (batch, channels * k, length)
    assert torch.equal(Maxout(2)(conv), torch.maximum(conv[:, 0::2], conv[:, 1::2]))


def test_maxout_gradcheck_and_bad_width():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Maxout(2), (x,))
    with pytest.raises(ValueError, match="divisible by 4"):
        Maxout(4)(torch.randn(2, 6))
    with pytest.raises(ValueError, match="k >= 2"):
        Maxout(1)


def test_leaky_relu_slope_is_settable_and_options_are_checked():
    act = make_activation("leaky_relu", slope=0.2)
    assert act(torch.tensor([-1.0])).item() == pytest.approx(-0.2)
    with pytest.raises(TrainwellError, match="has no option alpha; it takes slope"):
        make_activation("leaky_relu", alpha=0.2)
    with pytest.raises(TrainwellError, match="activation .relu. has no option k"):
        make_activation("relu", k=2)
    assert width_factor("maxout", k=3) == 3 and width_factor("maxout") == 2 and width_factor("relu") == 1


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturated_units_have_a_derivative_under_a_tenth_of_the_bound(name):
    meta = ACTIVATIONS.entry(name).meta
    z = torch.linspace(-10, 10, 4001, dtype=torch.float64, requires_grad=True)
    y = make_activation(name)(z)
    (grad,) = torch.autograd.grad(y.sum(), z)
    flagged = meta["saturated"](y.detach())
    assert flagged.any() and (~flagged).any()
    assert grad[flagged].max() < 0.1 * meta["grad_bound"] + 1e-3
    assert grad[~flagged].min() >= 0.1 * meta["grad_bound"] - 1e-3


def test_dead_relu_outputs_are_exactly_the_zero_derivative_ones():
    z = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    y = torch.relu(z)
    (grad,) = torch.autograd.grad(y.sum(), z)
    dead = ACTIVATIONS.entry("relu").meta["dead"](y.detach())
    assert torch.equal(dead, grad == 0)
    assert ACTIVATIONS.entry("leaky_relu").meta["dead"] is None
