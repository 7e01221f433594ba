"""Optimizers, penalties, per-layer rates, schedules and clipping from a config."""

import math

import pytest
import torch
from torch import nn

import trainwell
from trainwell.config import ConfigError, load_config
from trainwell.errors import TrainwellError
from trainwell.optim import build_optimizer
from trainwell.loop.schedule import build_schedule
from trainwell.regularize import param_groups
from trainwell.loop import GradientClipping, Trainer


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).double()


def test_optimizer_defaults_fill_the_config():
    adam = load_config(None, []).optim
    assert (adam.lr, adam.betas, adam.eps, adam.momentum) == (1e-3, (0.9, 0.999), 1e-8, None)
    sgd = load_config(None, ["optim.name=sgd"]).optim
    assert (sgd.lr, sgd.momentum, sgd.betas) == (1e-3, 0.0, None)  # torch.optim.SGD's defaults
    assert load_config(None, ["optim.name=momentum"]).optim.momentum == 0.9
    assert load_config(None, ["optim.name=nesterov"]).optim.lr == 1e-3
    assert load_config(None, ["optim.name=adadelta"]).optim.lr == 1.0


def test_keys_an_optimizer_does_not_take_are_refused():
    with pytest.raises(ConfigError, match="optim.momentum does not apply to adam"):
        load_config(None, ["optim.momentum=0.5"])
    cfg = load_config(None, ["optim.options={centered: true}"])
    with pytest.raises(TrainwellError, match="optim.options.centered is not an option of adam"):
        build_optimizer(_net(), cfg.optim, cfg.reg)
    cfg = load_config(None, ["optim.name=rmsprop", "optim.options={centered: true}"])
    assert build_optimizer(_net(), cfg.optim, cfg.reg).param_groups[0]["centered"] is True


def test_penalties_skip_biases_and_norm_parameters_by_default():
    groups = param_groups(_net(), l2=0.1)
    penalised = {n for g in groups if g["l2"] for n in g["names"]}
    assert penalised == {"0.weight", "3.weight"}
    everything = param_groups(_net(), l2=0.1, exclude_bias_and_norm=False)
    assert {n for g in everything if g["l2"] for n in g["names"]} == {n for n, _ in _net().named_parameters()}


@pytest.mark.parametrize("key, name", [("reg.weight_decay", "sgd"), ("reg.weight_decay", "adamw"),
                                       ("reg.l2", "sgd")])
def test_weight_decay_from_the_config_shrinks_weights_only(key, name):
    net = _net()
    cfg = load_config(None, [f"optim.name={name}", "optim.lr=0.1", f"{key}=0.5"])
    opt = build_optimizer(net, cfg.optim, cfg.reg)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in net.named_parameters():
        if n.endswith("weight") and p.dim() > 1:
            torch.testing.assert_close(p.detach(), before[n] * (1 - 0.1 * 0.5))
        else:
            assert torch.equal(p.detach(), before[n]), n


def test_l1_from_the_config_is_proximal_by_default():
    net = _net()
    cfg = load_config(None, ["optim.name=sgd", "optim.lr=0.1", "reg.l1=100"])
    opt = build_optimizer(net, cfg.optim, cfg.reg)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert (net[0].weight == 0).all() and (net[3].weight == 0).all()
    assert (net[0].bias != 0).any()


def test_per_layer_learning_rates():
    cfg = load_config(None, ["optim.name=sgd", "optim.lr=0.1", "optim.lr_multipliers={'0': 0.01, '3': 2.0}"])
    opt = build_optimizer(_net(), cfg.optim, cfg.reg)
    lrs = {n: g["lr"] for g in opt.param_groups for n in g["names"]}
    assert lrs["0.weight"] == pytest.approx(0.001) and lrs["0.bias"] == pytest.approx(0.001)
    assert lrs["1.weight"] == pytest.approx(0.1) and lrs["3.weight"] == pytest.approx(0.2)
    cfg = load_config(None, ["optim.lr_multipliers={'net.hiden0': 0.1}"])
    with pytest.raises(TrainwellError, match="matches no parameter"):
        build_optimizer(_net(), cfg.optim, cfg.reg)


def test_single_group_optimizers_refuse_penalties():
    cfg = load_config(None, ["optim.name=lbfgs", "reg.l2=0.1"])
    with pytest.raises(TrainwellError, match="lbfgs takes one parameter group"):
        build_optimizer(_net(), cfg.optim, cfg.reg)


def _lrs(schedule_overrides, epochs=8):
    cfg = load_config(None, ["optim.name=sgd", "optim.lr=1.0", *schedule_overrides])
    net = nn.Linear(2, 2).double()
    opt = build_optimizer(net, cfg.optim, cfg.reg)
    sched = build_schedule(opt, cfg.schedule, epochs)
    from trainwell.data import Split

    g = torch.Generator().manual_seed(0)
    data = Split(torch.randn(8, 2, generator=g, dtype=torch.float64), torch.randint(0, 2, (8,), generator=g))
    history = Trainer(net, opt, torch.nn.functional.cross_entropy, data, data, epochs=epochs, batch_size=8,
                      callbacks=[sched]).fit()
    return [h["lr"] for h in history]


def test_schedules_give_the_documented_learning_rates():
    assert _lrs(["schedule.name=step", "schedule.step_size=3", "schedule.gamma=0.5"]) == \
        pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])
    assert _lrs(["schedule.name=exponential", "schedule.gamma=0.5"], 4) == pytest.approx([1, 0.5, 0.25, 0.125])
    cosine = _lrs(["schedule.name=cosine"], 4)
    assert cosine == pytest.approx([(1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)])
    warm = _lrs(["schedule.name=step", "schedule.warmup_epochs=3", "schedule.step_size=2", "schedule.gamma=0.5"], 7)
    assert warm == pytest.approx([0.25, 0.5, 0.75, 1, 1, 0.5, 0.5])


def test_plateau_cuts_the_rate_when_validation_stalls():
    # a rate of 1e-6 improves the validation loss by far less than plateau's 1e-4 relative threshold
    lrs = _lrs(["schedule.name=plateau", "schedule.patience=0", "schedule.factor=0.5", "optim.lr=1e-6"], 4)
    assert lrs == pytest.approx([1e-6, 1e-6, 5e-7, 2.5e-7])  # epoch 1 sets the best; each later one stalls


def test_clipping_callback_bounds_the_gradient_norm():
    net = _net()
    clip = GradientClipping(max_norm=0.01)
    from trainwell.data import Split

    class Check(GradientClipping):
        def __init__(self):
            self.norms = []

        def on_after_backward(self, trainer):
            self.norms.append(torch.cat([p.grad.reshape(-1) for p in trainer.model.parameters()]).norm().item())

    check = Check()
    g = torch.Generator().manual_seed(0)
    data = Split(100 * torch.randn(16, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (16,), generator=g))
    Trainer(net, torch.optim.SGD(net.parameters(), lr=0.01), torch.nn.functional.cross_entropy, data, epochs=2,
            batch_size=8, callbacks=[clip, check]).fit()
    assert clip.last_norm > 0.01 and max(check.norms) <= 0.01 * (1 + 1e-6)


@pytest.mark.parametrize("name", ["newton", "lbfgs"])
def test_second_order_optimizers_train_from_a_config(name, tmp_path):
    cfg = {"data": {"name": "blobs", "n_samples": 200, "batch_size": 1000},
           # Newton on softmax regression: a convex loss, where its step is a descent direction
           "model": {"name": "logistic"} if name == "newton" else {"name": "mlp", "depth": 1, "width": 8},
           "optim": {"name": name, **({"options": {"damping": 1e-3}} if name == "newton" else {})},
           "train": {"epochs": 5, "progress": False}}
    run = trainwell.train(cfg, out=tmp_path / name)
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]
    assert run.metrics["test"]["accuracy"] > 0.8
