"""The learning-rate range test: its rates, its losses, its verdict and that it leaves no trace."""

import copy
import math

import pytest
import torch
from torch import nn

from trainwell import optim
from trainwell.optim import LRRangeTest, lr_range_test


def _regression(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = x @ torch.randn(5, 1, generator=g, dtype=torch.float64) + 0.3 * torch.randn(n, 1, generator=g,
                                                                                     dtype=torch.float64)
    return x, y


def _mse(out, y):
    return 0.5 * ((out - y) ** 2).mean()


def test_losses_are_torch_sgd_with_the_geometric_rate_smoothed_and_bias_corrected():
    """Replayed step by step with torch.optim.SGD at the rate of each step (float64)."""
    x, y = _regression()
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    replay = copy.deepcopy(model)
    test = lr_range_test(model, optim.sgd(model.parameters(), lr=0.1), _mse, [(x, y)], start_lr=1e-3, end_lr=1.0,
                         steps=12, smoothing=0.8, diverge=1e9)
    ratio = 1000 ** (1 / 11)
    assert test.lrs == pytest.approx([1e-3 * ratio ** i for i in range(12)], rel=1e-12)
    sgd = torch.optim.SGD(replay.parameters(), lr=1.0)
    average, expected = 0.0, []
    for i, lr in enumerate(test.lrs):
        sgd.param_groups[0]["lr"] = lr
        sgd.zero_grad()
        loss = _mse(replay(x), y)
        loss.backward()
        sgd.step()
        average = 0.8 * average + 0.2 * loss.item()
        expected.append(average / (1 - 0.8 ** (i + 1)))
    assert test.losses == pytest.approx(expected, rel=1e-12)


def test_model_and_optimizer_are_restored_exactly():
    x, y = _regression()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    optimizer = optim.adam(model.parameters(), lr=0.01)
    for _ in range(3):  # optimizer state exists before the test
        optimizer.zero_grad()
        _mse(model(x), y).backward()
        optimizer.step()
    params = copy.deepcopy(model.state_dict())
    state = copy.deepcopy(optimizer.state_dict())
    lr_range_test(model, optimizer, _mse, [(x, y)], start_lr=1e-5, end_lr=10.0, steps=30)
    for k, v in model.state_dict().items():
        assert torch.equal(v, params[k])
    after = optimizer.state_dict()
    assert after["param_groups"] == state["param_groups"]
    for i, s in state["state"].items():
        for k, v in s.items():
            assert torch.equal(torch.as_tensor(after["state"][i][k]), torch.as_tensor(v))


def test_restored_even_when_the_loss_raises():
    x, y = _regression()
    model = nn.Linear(5, 1).double()
    weights = model.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    calls = []

    def failing(out, target):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return _mse(out, target)

    with pytest.raises(RuntimeError, match="boom"):
        lr_range_test(model, optimizer, failing, [(x, y)], steps=10)
    assert torch.equal(model.weight, weights) and optimizer.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("scales", [(1, 1, 1, 1, 1), (1, 0.3, 0.1, 0.03, 0.01)])
def test_quadratic_diverges_past_two_over_the_top_curvature_and_the_suggestion_is_stable(scales):
    """Full-batch GD on least squares is stable iff lr < 2 / lambda_max of the Hessian X^T X / n."""
    x, y = _regression(n=256)
    x = x * torch.tensor(scales, dtype=torch.float64)
    edge = 2 / torch.linalg.eigvalsh(x.T @ x / len(x)).max().item()
    model = nn.Linear(5, 1, bias=False).double()
    test = lr_range_test(model, torch.optim.SGD(model.parameters(), lr=1.0), _mse, [(x, y)], start_lr=1e-4,
                         end_lr=100.0, steps=100)
    assert test.diverged and edge < test.lrs[-1] < 100.0
    assert edge / 10 < test.suggestion() < edge
    # converged before the edge, the loss rises late: the turning rate lies past the edge (its documented risk)
    assert test.suggestion() < test.turning_lr < test.min_loss_lr


def test_turning_rate_undoes_the_moving_average_delay():
    lrs = [10 ** (i / 10) for i in range(40)]
    losses = [5 - 0.1 * i for i in range(30)] + [2.5 + i for i in range(10)]  # lowest at step 29
    assert LRRangeTest(lrs, losses, True, smoothing=0.9).turning_lr == lrs[20]
    assert LRRangeTest(lrs, losses, True, smoothing=0.5).turning_lr == lrs[28]
    assert LRRangeTest(lrs, losses, True).min_loss_lr == lrs[29]
    assert LRRangeTest(lrs, losses, True).suggestion() == pytest.approx(lrs[19])


def test_parameter_groups_keep_their_ratio():
    x, y = _regression()
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 1)).double()
    seen = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append([g["lr"] for g in self.param_groups])
            return super().step(closure)

    optimizer = Spy([{"params": model[0].parameters(), "lr": 0.2}, {"params": model[1].parameters(), "lr": 0.05}])
    lr_range_test(model, optimizer, _mse, [(x, y)], start_lr=1e-4, end_lr=1e-2, steps=5)
    assert all(math.isclose(a / b, 4.0) for a, b in seen) and seen[0][0] == pytest.approx(1e-4)
    assert [g["lr"] for g in optimizer.param_groups] == [0.2, 0.05]


@pytest.mark.parametrize("kwargs, message", [({"start_lr": 1.0, "end_lr": 0.1}, "start_lr < end_lr"),
                                             ({"steps": 1}, "steps must be >= 2"),
                                             ({"smoothing": 1.0}, "smoothing")])
def test_bad_arguments(kwargs, message):
    model = nn.Linear(5, 1).double()
    with pytest.raises(ValueError, match=message):
        lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), _mse, [_regression()], **kwargs)


def test_no_batches_is_a_value_error():
    model = nn.Linear(5, 1).double()
    with pytest.raises(ValueError, match="no batches"):
        lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), _mse, [])
