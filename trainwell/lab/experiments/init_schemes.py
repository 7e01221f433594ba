"""How four initialisations spread activations and state gradients through a deep net, under tanh and ReLU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.config import ModelConfig
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import mean, probed
from trainwell.lab.plotting import curves, figure, save
from trainwell.models import build_model

INITS = ("normal", "standard_uniform", "xavier_normal", "he_normal")


@dataclass(frozen=True)
class Settings:
    depth: int = 10
    width: int = 256
    rows: int = 512
    activations: tuple[str, ...] = ("tanh", "relu")
    seeds: int = 3


def run(cfg: Settings, seeds: list[int]) -> dict:
    act_std: dict = {a: {i: [] for i in INITS} for a in cfg.activations}
    grad_std: dict = {a: {i: [] for i in INITS} for a in cfg.activations}
    for act in cfg.activations:
        for init in INITS:
            for seed in seeds:
                torch.manual_seed(seed)
                model = build_model(ModelConfig(depth=cfg.depth, width=cfg.width, activation=act, init=init,
                                                dropout=0.0), (cfg.width,), 10)
                x = torch.randn(cfg.rows, cfg.width)  # (rows, features), unit variance inputs
                with probed(model) as probe:
                    # a loss whose gradient at the output is unit-variance noise: the backward pass alone
                    (model(x) * torch.randn(cfg.rows, 10)).sum().backward()
                    rows = probe.layers()
                act_std[act][init].append([r["std"] for r in rows])
                grad_std[act][init].append([r["grad_std"] for r in rows])
    avg = lambda by: {a: {i: [mean(c) for c in zip(*v)] for i, v in d.items()} for a, d in by.items()}  # noqa: E731
    activation_std, state_grad_std = avg(act_std), avg(grad_std)
    ratio = {a: {i: {"activation": activation_std[a][i][-1] / activation_std[a][i][0],
                     "state_grad": state_grad_std[a][i][0] / state_grad_std[a][i][-1]}
                 for i in INITS} for a in cfg.activations}
    return {"activation_std": activation_std, "state_grad_std": state_grad_std, "ratio_last_first": ratio}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    r = m["ratio_last_first"]
    checks = [(f"small normal: activations vanish under {a} (last/first {r[a]['normal']['activation']:.1e} < 1e-3)",
               r[a]["normal"]["activation"] < 1e-3) for a in ("tanh", "relu")]
    checks += [(f"Xavier keeps tanh's activations (last/first {r['tanh']['xavier_normal']['activation']:.2f} "
                "in [0.2, 5])", 0.2 <= r["tanh"]["xavier_normal"]["activation"] <= 5),
               (f"He keeps ReLU's activations (last/first {r['relu']['he_normal']['activation']:.2f} in [0.5, 2])",
                0.5 <= r["relu"]["he_normal"]["activation"] <= 2),
               (f"He keeps ReLU's state gradients (first/last {r['relu']['he_normal']['state_grad']:.2f} "
                "in [0.5, 2])", 0.5 <= r["relu"]["he_normal"]["state_grad"] <= 2),
               (f"Xavier shrinks ReLU's activations (last/first {r['relu']['xavier_normal']['activation']:.3f} "
                "< 0.1)", r["relu"]["xavier_normal"]["activation"] < 0.1)]
    return judge(checks)


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    acts = list(m["activation_std"])
    fig, axes = figure(len(acts), 2)
    for col, act in enumerate(acts):
        layers = list(range(1, len(m["activation_std"][act]["he_normal"]) + 1))
        curves(axes[0][col], m["activation_std"][act], x=layers, log=True, xlabel="hidden layer",
               ylabel="activation std", title=f"{act}: forward")
        curves(axes[1][col], m["state_grad_std"][act], x=layers, log=True, xlabel="hidden layer",
               ylabel="state gradient std", title=f"{act}: backward")
    return [save(fig, directory, "init_spread.png")]


def summary(m: dict) -> str:
    r = m["ratio_last_first"]
    return "activation std last/first: " + ", ".join(f"{a}/{i} {r[a][i]['activation']:.2g}"
                                                     for a in r for i in ("xavier_normal", "he_normal"))


EXPERIMENT = Experiment(
    name="init_schemes",
    claim="small random numbers vanish, Xavier keeps tanh's variance, He keeps ReLU's (forward and backward)",
    source="notes on weight initialisation (seed 001, 004); Glorot & Bengio 2010; He et al. 2015",
    setup="MLP of 10 hidden layers x 256 units at initialisation, 512 unit-variance random inputs, a random "
          "unit-variance output gradient; std of each hidden layer's output and of its state gradient",
    criterion="confirmed if the last/first activation-std ratio is < 1e-3 for small normal (std 0.01) under "
              "tanh and ReLU, in [0.2, 5] for Xavier under tanh, in [0.5, 2] for He under ReLU (and the "
              "first/last state-gradient ratio in [0.5, 2] too), and < 0.1 for Xavier under ReLU; otherwise "
              "inconclusive",
    config=Settings(), quick=Settings(rows=256, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary,
    keys=("activation_std", "state_grad_std", "ratio_last_first"))
