"""Weight norm and batch norm speed up training over no norm; cosine norm, whose outputs are bounded, loses
expressive power and trains to a higher loss (notes on normalisation, seed 001)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save

NORMS = ("none", "weight", "cosine", "batch")


@dataclass(frozen=True)
class Settings:
    rates: tuple[float, ...] = (0.01, 0.1, 1.0)   # plain SGD
    depth: int = 3
    width: int = 64
    epochs: int = 5
    batch_size: int = 32
    faster: float = 0.9          # a norm that speeds training ends below this x no norm's loss
    worse: float = 1.1           # cosine norm's loss above this x weight norm's and BN's
    seeds: int = 2


def config(cfg: Settings, norm: str, lr: float, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": "digits", "batch_size": cfg.batch_size},
                       model={"name": "mlp", "depth": cfg.depth, "width": cfg.width, "activation": "relu",
                              "init": "he_normal", "norm": norm},
                       optim={"name": "sgd", "lr": lr}, train={"epochs": cfg.epochs})


def number(x: float | str) -> float:
    """A stored loss as a float; a NaN (a diverged run) counts as an infinite loss."""
    v = float(x)
    return math.inf if math.isnan(v) else v


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data("digits")
    loss: dict = {n: {f"{lr:g}": [] for lr in cfg.rates} for n in NORMS}
    acc: dict = {n: {f"{lr:g}": [] for lr in cfg.rates} for n in NORMS}
    for norm in NORMS:
        for lr in cfg.rates:
            for seed in seeds:
                r = quiet_train(config(cfg, norm, lr, seed), data=data)
                loss[norm][f"{lr:g}"].append(r.metrics["train"]["loss"])
                acc[norm][f"{lr:g}"].append(r.metrics["val"]["accuracy"])
    best = {n: [min(number(loss[n][k][s]) for k in loss[n]) for s in range(len(seeds))] for n in NORMS}
    return {"train_loss": loss, "best_train_loss": best, "val_accuracy": acc,
            "configs": {f"{n}_lr{lr:g}": config(cfg, n, lr, 0) for n in NORMS for lr in cfg.rates}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    b = {n: [number(x) for x in xs] for n, xs in m["best_train_loss"].items()}
    seeds = range(len(b["none"]))
    r = lambda n: [round(x, 4) for x in b[n]]  # noqa: E731
    return judge(
        [(f"weight norm's best training loss <= {cfg.faster} x no norm's for every seed ({r('weight')} vs "
          f"{r('none')})", all(b["weight"][s] <= cfg.faster * b["none"][s] for s in seeds)),
         (f"BN's best training loss <= {cfg.faster} x no norm's for every seed ({r('batch')})",
          all(b["batch"][s] <= cfg.faster * b["none"][s] for s in seeds)),
         (f"cosine norm's best training loss > {cfg.worse} x weight norm's and BN's for every seed ({r('cosine')})",
          all(b["cosine"][s] > cfg.worse * max(b["weight"][s], b["batch"][s]) for s in seeds))],
        refute=[("no norm ends below both weight norm and BN for every seed",
                 all(b["none"][s] < min(b["weight"][s], b["batch"][s]) for s in seeds)),
                ("cosine norm ends lowest of the four for every seed",
                 all(b["cosine"][s] < min(b[n][s] for n in NORMS if n != "cosine") for s in seeds))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1)
    rates = [float(k) for k in m["train_loss"]["none"]]
    series = {n: [mean([number(x) for x in xs]) for xs in m["train_loss"][n].values()] for n in NORMS}
    curves(axes[0][0], {n: [y if math.isfinite(y) else None for y in ys] for n, ys in series.items()}, x=rates,
           log=True, xlabel="learning rate (plain SGD)", ylabel="training loss at the end (mean of seeds)",
           title=f"digits, MLP {result['config']['depth']} x {result['config']['width']}, "
                 f"{result['config']['epochs']} epochs")
    axes[0][0].set_xscale("log")
    return [save(fig, directory, "weight_cosine_norm.png")]


def summary(m: dict) -> str:
    return "best train loss " + ", ".join(f"{n} {mean([number(x) for x in m['best_train_loss'][n]]):.4f}"
                                          for n in NORMS)


EXPERIMENT = Experiment(
    name="weight_cosine_norm",
    claim="weight norm and batch norm train faster than no norm; cosine norm, bounded in [-1, 1], loses expressive "
          "power and trains to a higher loss",
    source="notes on normalisation: weight norm, cosine norm and what normalisation does (seed 001); Salimans & "
           "Kingma 2016; Luo et al. 2017",
    setup="trainwell.train on digits: MLP 3 x 64 ReLU, He init, model.norm none, weight (w = g v / ||v||), cosine "
          "(h = w.x / (||w|| ||x||), no bias) or batch, plain SGD at lr 0.01, 0.1 and 1, batch 32, 5 epochs "
          "(--quick: 2 epochs, one seed); each norm judged at its best rate by the training loss in evaluation "
          "mode at the end (a diverged run counts as an infinite loss)",
    criterion="confirmed if, for every seed, weight norm's and BN's best training loss are each <= 0.9 x no norm's "
              "and cosine norm's best training loss is > 1.1 x both weight norm's and BN's; refuted if no norm "
              "ends below both weight norm and BN for every seed, or cosine norm ends lowest of the four for every "
              "seed; otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=2, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("train_loss",))
