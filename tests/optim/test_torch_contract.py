"""The torch.optim contract, across every named trainwell optimizer, with torch.optim as the oracle.

What PyTorch tools rely on: state_dict round-trips (also through torch.save / torch.load and into
torch.optim's own optimizers and back mid-run), zero_grad, schedulers mutating param_groups (OneCycleLR
and CyclicLR included), step hooks, closures, deepcopy / pickle, add_param_group, maximize, complex
parameters, sparse gradients and torch's defaults. All in float64 / complex128.
"""

import copy
import inspect
import io
import pickle

import pytest
import torch
from torch import nn

from trainwell import optim

# name -> (trainwell factory, torch.optim factory with the same hyper-parameters); both take maximize/foreach
CASES = {
    "sgd": (lambda p, **k: optim.sgd(p, lr=0.05, weight_decay=0.01, **k),
            lambda p, **k: torch.optim.SGD(p, lr=0.05, weight_decay=0.01, **k)),
    "sgd_momentum": (lambda p, **k: optim.sgd(p, lr=0.02, momentum=0.9, dampening=0.1, **k),
                     lambda p, **k: torch.optim.SGD(p, lr=0.02, momentum=0.9, dampening=0.1, **k)),
    "momentum": (lambda p, **k: optim.momentum(p, lr=0.02, momentum=0.8, weight_decay=0.01, **k),
                 lambda p, **k: torch.optim.SGD(p, lr=0.02, momentum=0.8, weight_decay=0.01, **k)),
    "nesterov": (lambda p, **k: optim.nesterov(p, lr=0.02, momentum=0.8, weight_decay=0.01, **k),
                 lambda p, **k: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.01, **k)),
    "adagrad": (lambda p, **k: optim.adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                           initial_accumulator_value=0.1, **k),
                lambda p, **k: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                                   initial_accumulator_value=0.1, **k)),
    "adadelta": (lambda p, **k: optim.adadelta(p, lr=1.0, rho=0.8, weight_decay=0.01, **k),
                 lambda p, **k: torch.optim.Adadelta(p, lr=1.0, rho=0.8, weight_decay=0.01, **k)),
    "rmsprop": (lambda p, **k: optim.rmsprop(p, lr=0.01, alpha=0.9, weight_decay=0.01, **k),
                lambda p, **k: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, weight_decay=0.01, **k)),
    "rmsprop_centered": (lambda p, **k: optim.rmsprop(p, lr=0.01, momentum=0.5, centered=True, **k),
                         lambda p, **k: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True, **k)),
    "adam": (lambda p, **k: optim.adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, **k),
             lambda p, **k: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, **k)),
    "adam_amsgrad": (lambda p, **k: optim.adam(p, lr=0.01, amsgrad=True, **k),
                     lambda p, **k: torch.optim.Adam(p, lr=0.01, amsgrad=True, **k)),
    "adamw": (lambda p, **k: optim.adamw(p, lr=0.01, weight_decay=0.1, **k),
              lambda p, **k: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, **k)),
    "adamw_amsgrad": (lambda p, **k: optim.adamw(p, lr=0.01, weight_decay=0.1, amsgrad=True, **k),
                      lambda p, **k: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, amsgrad=True, **k)),
}
NAMES = list(CASES)
TOL = 1e-10


def _model(seed=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def _groups(model):
    """Two groups with different learning rates: per-group settings must carry over."""
    return [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.004}]


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _steps(model, opt, n, gen, sched=None, loss_sign=1.0):
    for _ in range(n):
        x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
        y = torch.randn(12, 3, generator=gen, dtype=torch.float64)
        opt.zero_grad()
        (loss_sign * (model(x) - y).pow(2).mean()).backward()  # (softmax kernels crawl on busy shared cores)
        opt.step()
        if sched is not None:
            sched.step()
    return _flat(model)


def _trajectory(make, n=30, seed=2, **kw):
    model = _model()
    return _steps(model, make(_groups(model), **kw), n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("foreach", [False, True])
def test_maximize_follows_torchs_ascent(name, foreach):
    ours, theirs = CASES[name]
    got = _trajectory(ours, maximize=True, foreach=foreach)
    assert (got - _trajectory(theirs, maximize=True)).abs().max() <= TOL
    assert (got - _trajectory(ours, foreach=foreach)).abs().max() > 1e-3  # it did ascend, not descend


def _complex_run(make, n=40, **kw):
    torch.manual_seed(0)
    w = torch.randn(4, 5, dtype=torch.complex128, requires_grad=True)
    b = torch.randn(4, dtype=torch.complex128, requires_grad=True)
    opt = make([{"params": [w]}, {"params": [b], "lr": 0.003}], **kw)
    gen = torch.Generator().manual_seed(1)
    for _ in range(n):
        x = torch.randn(16, 5, dtype=torch.complex128, generator=gen)
        y = torch.randn(16, 4, dtype=torch.complex128, generator=gen)
        opt.zero_grad()
        (x @ w.T + b - y).abs().pow(2).mean().backward()
        opt.step()
    return torch.cat([w.detach().reshape(-1), b.detach()]), opt


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_follow_torch_over_40_steps(name, foreach):
    ours, theirs = CASES[name]
    got, opt = _complex_run(ours, foreach=foreach)
    want, ref = _complex_run(theirs)
    assert (got - want).abs().max() <= TOL
    start, _ = _complex_run(ours, n=0)
    assert (got - start).abs().max() > 1e-2
    for (p, s), (_, t) in zip(opt.state.items(), ref.state.items()):  # the same state, complex like torch's
        assert s.keys() == t.keys()
        for k in s:
            assert s[k].dtype == t[k].dtype and s[k].shape == t[k].shape, k


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["trainwell_to_torch", "torch_to_trainwell"])
def test_switching_with_torch_mid_run_keeps_torchs_trajectory(name, direction):
    ours, theirs = CASES[name]
    first, second = (ours, theirs) if direction == "trainwell_to_torch" else (theirs, ours)
    want = _trajectory(theirs, n=20)
    model = _model()
    gen = torch.Generator().manual_seed(2)
    opt = first(_groups(model))
    _steps(model, opt, 10, gen)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    then = second(_groups(model))
    then.load_state_dict(torch.load(buffer, weights_only=True))
    got = _steps(model, then, 10, gen)
    assert (got - want).abs().max() <= TOL


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_through_torch_save_resumes_identically(name):
    ours, _ = CASES[name]
    a = _model()
    opt_a = ours(_groups(a))
    _steps(a, opt_a, 8, torch.Generator().manual_seed(3))
    buffer = io.BytesIO()
    torch.save({"model": a.state_dict(), "optim": opt_a.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    b = _model(seed=9)
    b.load_state_dict(saved["model"])
    opt_b = ours(_groups(b))
    opt_b.load_state_dict(saved["optim"])
    assert opt_b.state_dict()["param_groups"] == opt_a.state_dict()["param_groups"]
    assert torch.equal(_steps(a, opt_a, 8, torch.Generator().manual_seed(4)),
                       _steps(b, opt_b, 8, torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_deepcopy_and_pickle_give_an_optimizer_that_continues_identically(name, how):
    ours, _ = CASES[name]
    model = _model()
    opt = ours(_groups(model))
    _steps(model, opt, 5, torch.Generator().manual_seed(5))
    twin_model, twin = copy.deepcopy((model, opt)) if how == "deepcopy" else pickle.loads(pickle.dumps((model, opt)))
    assert type(twin) is type(opt) and repr(twin) == repr(opt)
    assert torch.equal(_steps(model, opt, 5, torch.Generator().manual_seed(6)),
                       _steps(twin_model, twin, 5, torch.Generator().manual_seed(6)))


@pytest.mark.parametrize("name", NAMES)
def test_zero_grad_sets_to_none_or_zeros_as_torch(name):
    model = _model()
    opt = CASES[name][0](model.parameters())
    model(torch.randn(2, 5, dtype=torch.float64)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    before = _flat(model)
    opt.step()  # no gradients: nothing moves
    assert torch.equal(_flat(model), before)


SCHEDULERS = {
    "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=[0.05, 0.01], total_steps=30),
    "cyclic": lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=0.001, max_lr=0.05, step_size_up=7),
    "cyclic_no_momentum": lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.001, 0.05, step_size_up=5,
                                                                      cycle_momentum=False),
    "sequential": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=5),
            torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=6)], milestones=[5]),
    "lambda": lambda o: torch.optim.lr_scheduler.LambdaLR(o, [lambda s: 0.97 ** s, lambda s: 1 / (1 + s)]),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sched", list(SCHEDULERS))
def test_torch_schedulers_drive_trainwell_as_they_drive_torch(name, sched):
    """Same lr (and momentum / betas) in every group, same trajectory; where torch refuses, trainwell too."""
    ours, theirs = CASES[name]
    results = []
    for make in (ours, theirs):
        model = _model()
        opt = make(_groups(model))
        try:
            scheduler = SCHEDULERS[sched](opt)
        except ValueError as err:
            results.append(type(err))
            continue
        traj = _steps(model, opt, 30, torch.Generator().manual_seed(7), scheduler)
        keys = [k for k in ("lr", "momentum", "betas") if k in opt.param_groups[0]]
        settings = [float(v) for g in opt.param_groups for k in keys for v in torch.tensor(g[k]).reshape(-1)]
        results.append((traj, settings))
    if not isinstance(results[1], tuple):  # torch refuses: cycle_momentum needs momentum or betas
        assert results[0] is results[1] and sched in ("onecycle", "cyclic")
        return
    (got, got_groups), (want, want_groups) = results
    assert (got - want).abs().max() <= TOL
    assert got_groups == pytest.approx(want_groups, rel=1e-12)


def test_one_cycle_and_cyclic_cycle_sgds_momentum_as_with_torch_sgd():
    for make_sched in (SCHEDULERS["onecycle"], SCHEDULERS["cyclic"]):
        seen = []
        for make in (lambda p: optim.sgd(p, lr=0.01), lambda p: torch.optim.SGD(p, lr=0.01)):
            model = _model()
            opt = make(_groups(model))
            sched = make_sched(opt)
            moms = []
            gen = torch.Generator().manual_seed(8)
            for _ in range(12):
                _steps(model, opt, 1, gen, sched)
                moms.append(opt.param_groups[0]["momentum"])
            seen.append((_flat(model), moms))
        assert (seen[0][0] - seen[1][0]).abs().max() <= TOL
        assert seen[0][1] == pytest.approx(seen[1][1]) and max(seen[0][1]) - min(seen[0][1]) > 0.01


@pytest.mark.parametrize("name", NAMES)
def test_step_hooks_run_around_every_step_and_can_be_removed(name):
    model = _model()
    opt = CASES[name][0](model.parameters())
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", _flat(model))))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", _flat(model))))
    _steps(model, opt, 2, torch.Generator().manual_seed(9))
    assert [c for c, _ in calls] == ["pre", "post", "pre", "post"]
    assert not torch.equal(calls[0][1], calls[1][1]) and torch.equal(calls[1][1], calls[2][1])
    pre.remove()
    post.remove()
    _steps(model, opt, 1, torch.Generator().manual_seed(9))
    assert len(calls) == 4


@pytest.mark.parametrize("name", NAMES)
def test_closure_is_called_once_and_its_loss_returned(name):
    ours, theirs = CASES[name]
    got = []
    for make in (ours, theirs):
        model = _model()
        opt = make(model.parameters())
        x, y = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
        count = []

        def closure():
            count.append(1)
            opt.zero_grad()
            loss = (model(x) - y).pow(2).mean()
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(5)]
        assert len(count) == 5
        got.append((losses, _flat(model)))
    assert got[0][0] == pytest.approx(got[1][0], abs=TOL) and (got[0][1] - got[1][1]).abs().max() <= TOL


@pytest.mark.parametrize("name", NAMES)
def test_load_state_dict_with_mismatched_groups_raises_as_torch(name):
    ours, theirs = CASES[name]
    a = _model()
    state = ours(_groups(a)).state_dict()
    for make in (ours, theirs):
        b = _model()
        with pytest.raises(ValueError, match="different number of parameter groups"):
            make(b.parameters()).load_state_dict(state)
        with pytest.raises(ValueError, match="doesn't match the size"):
            make([{"params": [b[0].weight]}, {"params": [b[2].weight, b[2].bias, b[0].bias]}]).load_state_dict(state)


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_takes_defaults_and_a_refused_group_changes_nothing(name):
    ours, theirs = CASES[name]
    model = _model()
    opt, ref = ours([model[0].weight]), theirs([model[0].weight])
    opt.add_param_group({"params": [model[0].bias], "lr": 0.5})
    ref.add_param_group({"params": [model[0].bias], "lr": 0.5})
    shared = set(opt.param_groups[1]) & set(ref.param_groups[1]) - {"params"}
    assert {k: opt.param_groups[1][k] for k in shared} == {k: ref.param_groups[1][k] for k in shared}
    before = copy.deepcopy(opt.param_groups)
    with pytest.raises(ValueError, match="invalid learning rate lr=-1"):
        opt.add_param_group({"params": [model[2].weight], "lr": -1.0})
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [model[0].bias]})
    assert len(opt.param_groups) == 2
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == \
           [{k: v for k, v in g.items() if k != "params"} for g in before]
    opt.add_param_group({"params": [model[2].weight]})  # the refused parameter can still be added
    assert opt.param_groups[2]["lr"] == opt.defaults["lr"]


SPARSE = {  # sparse gradients: the optimizers torch.optim accepts them for
    "sgd": (lambda p: optim.sgd(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_momentum": (lambda p: optim.sgd(p, lr=0.1, momentum=0.9, dampening=0.2),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.2)),
    "momentum": (lambda p: optim.momentum(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov": (lambda p: optim.nesterov(p, lr=0.1),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adagrad": (lambda p: optim.adagrad(p, lr=0.5, lr_decay=0.05, initial_accumulator_value=0.1),
                lambda p: torch.optim.Adagrad(p, lr=0.5, lr_decay=0.05, initial_accumulator_value=0.1)),
}


def _sparse_run(make, n=30):
    torch.manual_seed(0)
    emb = nn.Embedding(20, 3, sparse=True).double()
    opt = make(emb.parameters())
    gen = torch.Generator().manual_seed(1)
    for _ in range(n):
        idx = torch.randint(0, 20, (6,), generator=gen)  # repeats: the gradient is uncoalesced
        opt.zero_grad()
        emb(idx).pow(2).sum().backward()
        assert emb.weight.grad.is_sparse
        opt.step()
    return emb.weight.detach().clone()


@pytest.mark.parametrize("name", list(SPARSE))
def test_sparse_gradients_follow_torch(name):
    ours, theirs = SPARSE[name]
    got = _sparse_run(ours)
    assert (got - _sparse_run(theirs)).abs().max() <= TOL
    assert (got - _sparse_run(ours, n=0)).abs().max() > 1e-2


@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradients_are_refused_where_torch_refuses_them(name):
    """With the cases' settings (weight decay on most): torch's outcome, step or RuntimeError, is trainwell's."""
    outcomes = []
    for make in CASES[name][::-1]:  # torch first
        emb = nn.Embedding(5, 2, sparse=True).double()
        with torch.no_grad():
            emb.weight.copy_(torch.arange(10.0).reshape(5, 2))
        opt = make(emb.parameters())
        emb(torch.tensor([1, 3, 1])).sum().backward()
        try:
            opt.step()
            outcomes.append(emb.weight.detach().clone())
        except RuntimeError as err:
            outcomes.append("sparse" in str(err))
    if isinstance(outcomes[0], torch.Tensor):
        assert isinstance(outcomes[1], torch.Tensor) and (outcomes[0] - outcomes[1]).abs().max() <= TOL
    else:
        assert outcomes[1] is True, "trainwell must refuse with a message naming sparse gradients"
    assert isinstance(outcomes[0], torch.Tensor) == (name == "sgd_momentum")  # the one case without weight decay


TORCH_OF = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
            "adagrad": torch.optim.Adagrad, "adadelta": torch.optim.Adadelta, "rmsprop": torch.optim.RMSprop,
            "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
# the documented differences (docs/optimizers.md): momentum and nesterov exist to have momentum
DIFFERENT = {("momentum", "momentum"): (0.9, 0), ("nesterov", "momentum"): (0.9, 0)}
TORCH_ONLY = {"capturable", "differentiable", "fused", "decoupled_weight_decay"}


def _defaults(fn):
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize("name", list(TORCH_OF))
def test_defaults_are_torchs_but_for_the_documented_differences(name):
    ours, theirs = _defaults(getattr(optim, name)), _defaults(TORCH_OF[name])
    for key in set(ours) & set(theirs):
        expected = DIFFERENT.get((name, key), (theirs[key], theirs[key]))
        assert (ours[key], theirs[key]) == expected, key
    only_torch = set(theirs) - set(ours) - TORCH_ONLY
    assert only_torch == ({"dampening", "nesterov"} if name == "nesterov" else {"nesterov"} if name == "momentum"
                          else set())
    assert set(ours) - set(theirs) <= {"bias_correction"}
    opt = getattr(optim, name)([torch.zeros(1, requires_grad=True)])
    for key in ("momentum", "nesterov", "maximize"):  # in every group, for schedulers and torch's loaders
        assert key in opt.defaults or name not in ("sgd", "momentum", "nesterov"), key


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_newton_keeps_the_contract_it_can():
    """Newton (no torch counterpart): deepcopy, pickle, state_dict via torch.save, hooks, maximize."""
    torch.manual_seed(0)
    a = torch.randn(3, 3, dtype=torch.float64)
    h = a @ a.T + torch.eye(3, dtype=torch.float64)  # positive definite
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    for maximize, sign in ((False, 1.0), (True, -1.0)):
        x.data = torch.randn(3, dtype=torch.float64)
        opt = optim.newton([x], damping=0.0, maximize=maximize)

        def closure():
            opt.zero_grad()
            loss = sign * 0.5 * x @ h @ x + x.sum()
            loss.backward(create_graph=True)
            return loss

        twin_x, twin = copy.deepcopy((x, opt))
        calls = []
        opt.register_step_post_hook(lambda o, args, kwargs: calls.append(1))
        opt.step(closure)  # a quadratic: one full Newton step lands on the stationary point
        assert calls == [1]
        torch.testing.assert_close(x.detach(), -sign * torch.linalg.solve(h, torch.ones(3, dtype=torch.float64)))
        pickled = pickle.loads(pickle.dumps(opt))
        assert pickled.param_groups[0]["maximize"] is maximize and twin.param_groups[0]["maximize"] is maximize
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    again = optim.newton([x])
    again.load_state_dict(torch.load(buffer, weights_only=True))
    assert again.param_groups[0]["maximize"] is True and again.param_groups[0]["damping"] == 0.0


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.sgd(p, nesterov=True), "invalid nesterov=True with momentum=0.0"),
    (lambda p: optim.sgd(p, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
    (lambda p: optim.adam(p, amsgrad="yes"), "invalid amsgrad='yes'"),
    (lambda p: optim.rmsprop(p, maximize=1), "invalid maximize=1"),
    (lambda p: optim.newton(p, maximize=None), "invalid maximize=None"),
])
def test_bad_settings_are_one_line_value_errors(make, message):
    with pytest.raises(ValueError, match="allowed") as info:
        make([torch.zeros(2, requires_grad=True)])
    assert message in str(info.value) and "\n" not in str(info.value)
