import math

import pytest
import torch

from trainwell import optim
from trainwell.optim import clipping as C
from trainwell.optim import penalties as P
from trainwell.optim import transforms as T


def _one_step(opt, x, grad):
    x.grad = grad.clone()
    opt.step()
    return x.detach().clone()


@pytest.mark.parametrize("foreach", [False, True])
def test_adam_first_step_has_size_lr_with_bias_correction(foreach):
    x = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1e-3, -2.0, 5.0, -0.1, 30.0], dtype=torch.float64)
    opt = optim.adam([x], lr=0.01, eps=0.0, foreach=foreach)
    step = _one_step(opt, x, g)
    torch.testing.assert_close(step, -0.01 * g.sign(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_adam_first_step_without_correction(foreach):
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.5, -2.0, 7.0], dtype=torch.float64)
    opt = optim.adam([x], lr=0.01, betas=(0.9, 0.999), eps=0.0, bias_correction=False, foreach=foreach)
    step = _one_step(opt, x, g)
    expected = -0.01 * (1 - 0.9) / math.sqrt(1 - 0.999) * g.sign()
    torch.testing.assert_close(step, expected, rtol=1e-12, atol=0)


def test_l1_proximal_gives_exact_zeros_and_subgradient_does_not():
    torch.manual_seed(0)
    w_true = torch.tensor([2.0, -1.5] + [0.0] * 8, dtype=torch.float64)
    x = torch.randn(200, 10, dtype=torch.float64)
    y = x @ w_true + 0.01 * torch.randn(200, dtype=torch.float64)
    results = {}
    for mode, stage in (("prox", P.l1_proximal()), ("sub", P.add_l1())):
        w = torch.zeros(10, dtype=torch.float64, requires_grad=True)
        opt = optim.chain([w], stage, lr=0.05, l1=0.1)
        for _ in range(500):
            opt.zero_grad()
            ((x @ w - y) ** 2).mean().backward()
            opt.step()
        results[mode] = w.detach()
    assert (results["prox"][2:] == 0).all()  # irrelevant features: exactly zero
    assert (results["prox"][:2].abs() > 1).all()
    assert (results["sub"][2:] != 0).any()  # the sub-gradient only hovers around zero


def test_clip_by_value_and_global_norm_bound_the_update():
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    gx, gy = torch.tensor([5.0, -0.1, 0.2, -9.0], dtype=torch.float64), torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    for foreach in (False, True):
        opt = optim.chain([x, y], C.clip_by_value(), lr=1.0, clip_value=0.5, foreach=foreach)
        x.grad, y.grad = gx.clone(), gy.clone()
        before = x.detach().clone()
        opt.step()
        assert (x.detach() - before).abs().max() <= 0.5 + 1e-15
        opt = optim.chain([x, y], C.clip_by_global_norm(), lr=1.0, max_norm=1.0, foreach=foreach)
        x.grad, y.grad = gx.clone(), gy.clone()
        bx, by = x.detach().clone(), y.detach().clone()
        opt.step()
        moved = torch.cat([x.detach() - bx, y.detach() - by])
        assert moved.norm() == pytest.approx(1.0, rel=1e-5)
        # the direction is kept
        torch.testing.assert_close(-moved / moved.norm(), torch.cat([gx, gy]) / torch.cat([gx, gy]).norm())
    assert torch.equal(x.grad, gx)  # the user's gradients are never modified


def test_skip_non_finite_leaves_parameters_and_state_untouched():
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = optim.chain([x], C.skip_non_finite(), T.scale_by_adam(), lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    _one_step(opt, x, torch.ones(3, dtype=torch.float64))
    state = {k: v.clone() for k, v in opt.state[x].items()}
    before = x.detach().clone()
    _one_step(opt, x, torch.tensor([1.0, float("nan"), 1.0], dtype=torch.float64))
    assert torch.equal(x.detach(), before) and opt.skipped_steps == 1
    assert all(torch.equal(state[k], opt.state[x][k]) for k in state)
    stop = optim.chain([x], C.skip_non_finite("stop"), lr=0.1)
    x.grad = torch.tensor([float("inf"), 0, 0], dtype=torch.float64)
    with pytest.raises(C.NonFiniteUpdateError, match="non-finite update"):
        stop.step()


def test_decoupled_decay_shrinks_weights_regardless_of_adaptive_scaling():
    x = torch.full((2,), 10.0, dtype=torch.float64, requires_grad=True)
    opt = optim.adamw([x], lr=0.1, weight_decay=0.5)
    x.grad = torch.zeros(2, dtype=torch.float64)
    opt.step()  # zero gradient: only the decay acts, p <- p - lr * wd * p
    torch.testing.assert_close(x.detach(), torch.full((2,), 10.0 * (1 - 0.05), dtype=torch.float64))


def test_record_stats_reports_update_ratio_and_adaptive_step_sizes():
    x = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = optim.sgd([x], lr=0.1)
    opt.record_stats = True
    _one_step(opt, x, torch.full((4,), 2.0, dtype=torch.float64))
    (s,) = opt.last_stats
    assert s["update_norm"] == pytest.approx(0.1 * 4.0)
    assert s["param_norm"] == pytest.approx(2.0)  # the weights the update is applied to
    assert s["update_ratio"] == pytest.approx(s["update_norm"] / s["param_norm"])
    y = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = optim.rmsprop([y], lr=0.01, alpha=0.0, eps=0.0)
    opt.record_stats = True
    _one_step(opt, y, torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    (s,) = opt.last_stats
    # with alpha = 0 the effective step is lr / |g|
    assert s["step_size_min"] == pytest.approx(0.01 / 4) and s["step_size_max"] == pytest.approx(0.01 / 1)


def test_optimizers_work_with_every_scheduler_and_param_groups():
    model = torch.nn.Linear(3, 2).double()
    opt = optim.momentum([{"params": [model.weight], "lr": 0.1}, {"params": [model.bias], "lr": 0.01}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for _ in range(5):
        model(torch.randn(4, 3, dtype=torch.float64)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] == pytest.approx(0.1 * (1 + math.cos(math.pi * 5 / 10)) / 2)
    assert lrs[1] == pytest.approx(lrs[0] / 10)
    assert model.weight.grad is None  # zero_grad sets to None, as torch


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.sgd(p, lr=-1.0), "invalid learning rate lr=-1.0"),
    (lambda p: optim.adam(p, lr=float("nan")), "invalid learning rate"),
    (lambda p: optim.adam(p, betas=(0.9, 1.0)), "invalid betas"),
    (lambda p: optim.adam(p, eps=-1e-8), "invalid eps"),
    (lambda p: optim.momentum(p, momentum=1.5), "invalid momentum=1.5"),
    (lambda p: optim.rmsprop(p, alpha=-0.1), "invalid alpha"),
    (lambda p: optim.adadelta(p, rho=1.0), "invalid rho"),
    (lambda p: optim.newton(p, lr=0.0), "invalid learning rate"),
    (lambda p: optim.newton(p, damping=-1.0), "invalid damping"),
])
def test_bad_hyper_parameters_name_the_value_and_the_range(make, message):
    with pytest.raises(ValueError, match="allowed") as info:
        make([torch.zeros(2, requires_grad=True)])
    assert message in str(info.value)


def test_newton_refuses_large_models_and_missing_closures():
    big = torch.nn.Linear(100, 50)
    with pytest.raises(ValueError, match="5050 parameters, more than max_params=4096"):
        optim.newton(big.parameters())
    x = torch.zeros(2, requires_grad=True)
    opt = optim.newton([x])
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step()
    with pytest.raises(ValueError, match="create_graph=True"):
        opt.step(lambda: (x ** 2).sum().backward() or (x ** 2).sum())
