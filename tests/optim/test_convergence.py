"""One table of every optimizer on an ill-conditioned quadratic and on Rosenbrock.

The settings are the documented ones (README, "Optimizers"): the learning rate
each method needs on each problem, everything else at its default.
"""

import pytest
import torch

from trainwell import optim

A = torch.tensor([1.0, 100.0], dtype=torch.float64)  # condition number 100
B = torch.tensor([1.0, 1.0], dtype=torch.float64)
QUAD_OPT = B / A


def quadratic(x):
    return 0.5 * (A * x * x).sum() - (B * x).sum()


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


# name: (quadratic settings, rosenbrock settings or None where the method is known not to get there)
TABLE = {
    "sgd": (dict(lr=0.015), dict(lr=2e-3)),
    "momentum": (dict(lr=0.005), dict(lr=1e-3)),
    "nesterov": (dict(lr=0.005), dict(lr=1e-3)),
    "adagrad": (dict(lr=0.5), dict(lr=0.5)),
    "adadelta": (dict(), None),  # Adadelta's steps start at sqrt(eps) and crawl along Rosenbrock's valley
    "rmsprop": (dict(lr=0.01), dict(lr=1e-3)),
    "adam": (dict(lr=0.05), dict(lr=0.02)),
    "adamw": (dict(lr=0.05, weight_decay=0.0), dict(lr=0.02, weight_decay=0.0)),
}


def _minimise(name, f, start, steps, **kw):
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = getattr(optim, name)([x], **kw)
    for _ in range(steps):
        opt.zero_grad()
        f(x).backward()
        opt.step()
    return x.detach()


@pytest.mark.parametrize("name", list(TABLE))
def test_converges_on_an_ill_conditioned_quadratic(name):
    x = _minimise(name, quadratic, [3.0, -2.0], 3000, **TABLE[name][0])
    assert (x - QUAD_OPT).abs().max() < 1e-6


@pytest.mark.parametrize("name", [n for n, (_, r) in TABLE.items() if r is not None])
def test_converges_on_rosenbrock(name):
    x = _minimise(name, rosenbrock, [-1.2, 1.0], 10000, **TABLE[name][1])
    assert (x - 1).abs().max() < 2e-3


def test_adadelta_on_rosenbrock_stays_finite_and_descends():
    x = _minimise("adadelta", rosenbrock, [-1.2, 1.0], 2000)
    assert torch.isfinite(x).all() and rosenbrock(x) < rosenbrock(torch.tensor([-1.2, 1.0], dtype=torch.float64))


NEWTON_CLOSURE_WARNING = "ignore:Using backward\\(\\) with create_graph=True:UserWarning"


@pytest.mark.filterwarnings(NEWTON_CLOSURE_WARNING)
def test_newton_solves_the_quadratic_in_one_step():
    x = torch.tensor([3.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = optim.newton([x], lr=1.0, damping=0.0)

    def closure():
        opt.zero_grad()
        loss = quadratic(x)
        loss.backward(create_graph=True)
        return loss

    opt.step(closure)
    torch.testing.assert_close(x.detach(), QUAD_OPT, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings(NEWTON_CLOSURE_WARNING)
def test_newton_on_rosenbrock_converges_fast():
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.newton([x], lr=1.0, damping=1e-6)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward(create_graph=True)
        return loss

    for _ in range(30):
        opt.step(closure)
    assert (x.detach() - 1).abs().max() < 1e-8


def test_lbfgs_from_torch_by_name_on_rosenbrock():
    from trainwell.optim import OPTIMIZERS

    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = OPTIMIZERS.get("lbfgs")([x])

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    for _ in range(20):
        opt.step(closure)
    assert (x.detach() - 1).abs().max() < 1e-4  # 400 function evaluations at most
