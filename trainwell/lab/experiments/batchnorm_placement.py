"""Batch norm belongs before the activation, h = f(BN(Wx)), as the notes and Ioffe & Szegedy place it:
normalising the activation's output instead trains worse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, curves, figure, save

PLACEMENTS = ("before", "after")


@dataclass(frozen=True)
class Settings:
    data: str = "mnist1d"
    n_samples: int | None = 2000
    activations: tuple[str, ...] = ("relu", "sigmoid")
    depth: int = 3
    width: int = 128
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3             # Adam
    margin: float = 0.01         # val accuracy by which one placement must beat the other
    seeds: int = 3


def config(cfg: Settings, activation: str, placement: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": cfg.data, "n_samples": cfg.n_samples, "batch_size": cfg.batch_size},
                       model={"name": "mlp", "depth": cfg.depth, "width": cfg.width, "activation": activation,
                              "norm": "batch", "norm_position": placement},
                       optim={"name": "adam", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data(cfg.data, n_samples=cfg.n_samples)
    acc: dict = {a: {p: [] for p in PLACEMENTS} for a in cfg.activations}
    loss: dict = {a: {p: [] for p in PLACEMENTS} for a in cfg.activations}
    curve: dict = {a: {p: [] for p in PLACEMENTS} for a in cfg.activations}
    for act in cfg.activations:
        for placement in PLACEMENTS:
            for seed in seeds:
                r = quiet_train(config(cfg, act, placement, seed), data=data)
                acc[act][placement].append(r.metrics["val"]["accuracy"])
                loss[act][placement].append(r.metrics["train"]["loss"])
                curve[act][placement].append([h["val_accuracy"] for h in r.history])
    return {"val_accuracy": acc, "train_loss": loss, "val_accuracy_curve": curve,
            "configs": {f"{a}_{p}": config(cfg, a, p, 0) for a in cfg.activations for p in PLACEMENTS}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    acc = m["val_accuracy"]
    checks, refute = [], []
    for act, by in acc.items():
        pairs = [(round(b, 3), round(a, 3)) for b, a in zip(by["before"], by["after"])]
        checks.append((f"{act}: BN before the activation beats BN after it by >= {cfg.margin} in val accuracy for "
                       f"every seed ((before, after): {pairs})", all(b >= a + cfg.margin for b, a in pairs)))
        refute.append((f"{act}: BN after the activation beats BN before it by >= {cfg.margin} for every seed "
                       f"({pairs})", all(a >= b + cfg.margin for b, a in pairs)))
    return judge(checks, refute=refute)


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    acts = list(m["val_accuracy"])
    fig, axes = figure(1 + len(acts))
    bars(axes[0][0], {f"{a} {p}": mean(m["val_accuracy"][a][p]) for a in acts for p in PLACEMENTS},
         ylabel="val accuracy (mean of seeds)", title=f"BN placement, {result['config']['data']}")
    for i, act in enumerate(acts, start=1):
        series = {f"BN {p} seed {s}": c for p in PLACEMENTS for s, c in enumerate(m["val_accuracy_curve"][act][p])}
        curves(axes[0][i], series, x=list(range(1, result["config"]["epochs"] + 1)), xlabel="epoch",
               ylabel="val accuracy", title=f"{act} MLP")
    return [save(fig, directory, "placement.png")]


def summary(m: dict) -> str:
    return "; ".join(f"{a}: " + ", ".join(f"{p} {mean(v):.3f}" for p, v in by.items())
                     for a, by in m["val_accuracy"].items())


EXPERIMENT = Experiment(
    name="batchnorm_placement",
    claim="batch norm before the activation, h = f(BN(Wx)), trains better than batch norm after it",
    source="notes on normalisation: the general form h = f(gamma (x - mu) / delta + beta), normalised before the "
           "activation (seeds 001, 004); Ioffe & Szegedy 2015, section 3.2",
    setup="trainwell.train on MNIST-1D (2000 rows): MLP 3 x 128, ReLU or sigmoid, model.norm=batch with "
          "model.norm_position before or after, Adam lr 1e-3, batch 64, 20 epochs (--quick: digits, 3 epochs, one "
          "seed); val accuracy at the end",
    criterion="confirmed if, for both activations and every seed, BN before the activation ends with a val accuracy "
              "at least 0.01 above BN after it; refuted if, for either activation, BN after beats BN before by at "
              "least 0.01 for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(data="digits", n_samples=None, epochs=3, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("val_accuracy",))
