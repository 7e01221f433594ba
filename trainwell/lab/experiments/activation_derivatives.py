"""sigmoid' <= 0.25 and tanh' <= 1, so the state gradient of a deep sigmoid net shrinks layer by layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.config import ModelConfig
from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import geometric_mean, mean, probed
from trainwell.lab.plotting import curves, figure, save
from trainwell.losses import make_loss
from trainwell.models import build_model
from trainwell.nn.activations import ACTIVATIONS, make_activation

CURVE_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu")


@dataclass(frozen=True)
class Settings:
    depths: tuple[int, ...] = (5, 10, 20)
    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu")
    width: int = 64
    init: str = "xavier_normal"
    rows: int = 256
    grid: int = 4001          # points of x in [-8, 8] for the derivative's maximum
    seeds: int = 3


def run(cfg: Settings, seeds: list[int]) -> dict:
    x = torch.linspace(-8, 8, cfg.grid, dtype=torch.float64, requires_grad=True)
    max_derivative, derivative_curve = {}, {}
    for name in CURVE_ACTIVATIONS:
        (g,) = torch.autograd.grad(make_activation(name).double()(x).sum(), x)
        max_derivative[name] = g.max().item()
        derivative_curve[name] = g[::cfg.grid // 100].tolist()
    data = load_data("mnist1d", n_samples=1000, seed=0)
    xb, yb = data.train.x[:cfg.rows], data.train.y[:cfg.rows]
    loss_fn = make_loss("cross_entropy", data.n_classes)
    grads: dict = {a: {str(d): [] for d in cfg.depths} for a in cfg.activations}
    factors: dict = {a: {str(d): [] for d in cfg.depths} for a in cfg.activations}
    for act in cfg.activations:
        for depth in cfg.depths:
            for seed in seeds:
                torch.manual_seed(seed)
                model = build_model(ModelConfig(depth=depth, width=cfg.width, activation=act, init=cfg.init,
                                                dropout=0.0), data.input_shape, data.n_classes, data.kind,
                                    data.mean, data.std)
                with probed(model) as probe:
                    loss_fn(model(xb), yb).backward()
                    per_layer = [row["grad_std"] for row in probe.layers()]  # input side first
                grads[act][str(depth)].append(per_layer)
                # the factor by which the state gradient shrinks per layer, going back toward the input
                factors[act][str(depth)].append((per_layer[0] / per_layer[-1]) ** (1 / (depth - 1)))
    return {"max_derivative": max_derivative,
            "derivative_curve": {"x": x.detach()[::cfg.grid // 100].tolist(), **derivative_curve},
            "state_grad_per_layer": {a: {d: [mean(col) for col in zip(*v)] for d, v in by.items()}
                                     for a, by in grads.items()},
            "factor_per_layer": {a: {d: geometric_mean(v) for d, v in by.items()} for a, by in factors.items()},
            "factor_per_seed": factors}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    md, fs = m["max_derivative"], m["factor_per_seed"]
    bounds = {a: ACTIVATIONS.entry(a).meta["grad_bound"] for a in md}
    sig = [f for by in fs["sigmoid"].values() for f in by]
    return judge([(f"max sigmoid' = {md['sigmoid']:.5f} in [0.2499, 0.25]", 0.2499 <= md["sigmoid"] <= 0.25 + 1e-9),
                  (f"max tanh' = {md['tanh']:.5f} in [0.999, 1]", 0.999 <= md["tanh"] <= 1 + 1e-9),
                  ("every derivative within its registered bound",
                   all(md[a] <= bounds[a] + 1e-6 for a in md)),
                  (f"sigmoid factor per layer < 0.5 for every depth and seed (max {max(sig):.3f})",
                   max(sig) < 0.5)],
                 refute=[(f"sigmoid's state gradient does not shrink (factor {max(sig):.3f} >= 1)", max(sig) >= 1)])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    curve = dict(m["derivative_curve"])
    xs = curve.pop("x")
    curves(axes[0][0], curve, x=xs, xlabel="x", ylabel="f'(x)", title="derivatives")
    deepest = max(m["state_grad_per_layer"]["sigmoid"], key=int)
    curves(axes[0][1], {a: by[deepest] for a, by in m["state_grad_per_layer"].items()},
           x=list(range(1, int(deepest) + 1)), xlabel="hidden layer (1 = next to the input)",
           ylabel="state gradient std", log=True, title=f"depth {deepest}, {result['config']['init']}")
    return [save(fig, directory, "derivatives.png")]


def summary(m: dict) -> str:
    f = m["factor_per_layer"]
    return (f"max sigmoid' {m['max_derivative']['sigmoid']:.4f}, tanh' {m['max_derivative']['tanh']:.4f}; "
            "factor/layer " + ", ".join(f"{a} {mean(list(by.values())):.2f}" for a, by in f.items()))


EXPERIMENT = Experiment(
    name="activation_derivatives",
    claim="sigmoid' <= 0.25 and tanh' <= 1, so the state gradient shrinks layer by layer in deep sigmoid nets",
    source="notes on activation functions and the vanishing gradient (seed 000, 004); Glorot & Bengio 2010",
    setup="derivatives by autograd on x in [-8, 8]; MLPs of width 64 and depth 5/10/20 (Xavier normal init) "
          "on a batch of 256 MNIST-1D rows, state gradient = std of dL/dh per hidden layer at initialisation",
    criterion="confirmed if max sigmoid' is in [0.2499, 0.25], max tanh' in [0.999, 1], every activation's "
              "derivative stays within its registered bound, and in the sigmoid nets the state gradient shrinks "
              "by a factor < 0.5 per layer (geometric mean from the top hidden layer to the first) for every "
              "depth and seed; refuted if that factor is >= 1",
    config=Settings(), quick=Settings(depths=(5, 10), seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary,
    keys=("max_derivative", "state_grad_per_layer", "factor_per_layer"))
