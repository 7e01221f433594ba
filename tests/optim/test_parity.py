"""Every named optimizer follows torch.optim's trajectory in float64 (max abs difference <= 1e-10)."""

import copy

import pytest
import torch

from trainwell import optim

CASES = {
    "sgd": (lambda p, **k: optim.sgd(p, lr=0.05, weight_decay=0.01, **k),
            lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.01)),
    "momentum": (lambda p, **k: optim.momentum(p, lr=0.02, momentum=0.9, dampening=0.1, weight_decay=0.01, **k),
                 lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "nesterov": (lambda p, **k: optim.nesterov(p, lr=0.02, momentum=0.8, weight_decay=0.01, **k),
                 lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "adagrad": (lambda p, **k: optim.adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                           initial_accumulator_value=0.1, **k),
                lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                              initial_accumulator_value=0.1)),
    "adadelta": (lambda p, **k: optim.adadelta(p, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01, **k),
                 lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01)),
    "rmsprop": (lambda p, **k: optim.rmsprop(p, lr=0.01, alpha=0.9, weight_decay=0.01, **k),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, weight_decay=0.01)),
    "rmsprop_momentum_centered": (
        lambda p, **k: optim.rmsprop(p, lr=0.01, momentum=0.5, centered=True, **k),
        lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True)),
    "adam": (lambda p, **k: optim.adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, **k),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01)),
    "adamw": (lambda p, **k: optim.adamw(p, lr=0.01, weight_decay=0.1, **k),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
}


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()


def _groups(model):
    """Two groups with different learning rates: per-layer settings must carry over."""
    return [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.003}]


def _run(model, opt, steps, seed):
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.5)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 6, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (16,), generator=g)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("foreach", [False, True])
def test_named_optimizer_matches_torch_over_120_steps(name, foreach):
    ours, theirs = CASES[name]
    a, b = _model(1), _model(1)
    got = _run(a, ours(_groups(a), foreach=foreach), 120, seed=2)
    want = _run(b, theirs(_groups(b)), 120, seed=2)
    assert (got - want).abs().max().item() <= 1e-10
    assert (got - _run(_model(1), torch.optim.SGD(_model(1).parameters(), lr=0), 1, 2)).abs().max() > 1e-3


@pytest.mark.parametrize("name", list(CASES))
def test_foreach_path_equals_the_plain_kernels(name):
    ours, _ = CASES[name]
    a, b = _model(3), _model(3)
    got = _run(a, ours(a.parameters(), foreach=True), 50, seed=4)
    want = _run(b, ours(b.parameters(), foreach=False), 50, seed=4)
    assert (got - want).abs().max().item() <= 1e-12


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip_resumes_identically(name):
    ours, _ = CASES[name]
    a = _model(5)
    opt_a = ours(a.parameters())
    _run(a, opt_a, 10, seed=6)
    b = _model(0)
    b.load_state_dict(a.state_dict())
    opt_b = ours(b.parameters())
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as through a file: no shared buffers
    assert torch.equal(_run(a, opt_a, 10, seed=7), _run(b, opt_b, 10, seed=7))
