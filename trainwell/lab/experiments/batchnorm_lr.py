"""Batch norm trains a sigmoid net at 1x, 5x and 30x the rate; without it the higher rates train worse
(Ioffe & Szegedy 2015, BN-x5, BN-x30 and BN-x5-Sigmoid)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save

NORMS = ("none", "batch")


@dataclass(frozen=True)
class Settings:
    multipliers: tuple[float, ...] = (1.0, 5.0, 30.0)
    base_lr: float = 0.01        # SGD with momentum 0.9: an effective step of 0.1 at 1x
    depth: int = 4
    width: int = 64
    epochs: int = 10
    batch_size: int = 32
    trains: float = 0.5          # val accuracy a run that trains reaches (chance is 0.1)
    higher_rate_loss: float = 0.05  # how far below its 1x accuracy BN may fall at 5x and 30x
    bn_margin: float = 0.05      # how far BN must beat no norm at 30x
    seeds: int = 3


def key(multiplier: float) -> str:
    return f"{multiplier:g}"


def config(cfg: Settings, norm: str, multiplier: float, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": "digits", "batch_size": cfg.batch_size},
                       model={"name": "mlp", "depth": cfg.depth, "width": cfg.width, "activation": "sigmoid",
                              "init": "xavier_normal", "norm": norm},
                       optim={"name": "momentum", "lr": cfg.base_lr * multiplier}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data("digits")
    acc: dict = {n: {key(m): [] for m in cfg.multipliers} for n in NORMS}
    loss: dict = {n: {key(m): [] for m in cfg.multipliers} for n in NORMS}
    curve: dict = {n: {key(m): [] for m in cfg.multipliers} for n in NORMS}
    for norm in NORMS:
        for m in cfg.multipliers:
            for seed in seeds:
                r = quiet_train(config(cfg, norm, m, seed), data=data)
                acc[norm][key(m)].append(r.metrics["val"]["accuracy"])
                loss[norm][key(m)].append(r.metrics["train"]["loss"])
                curve[norm][key(m)].append([h["val_accuracy"] for h in r.history])
    return {"val_accuracy": acc, "train_loss": loss, "val_accuracy_curve": curve,
            "lr": {key(m): cfg.base_lr * m for m in cfg.multipliers},
            "configs": {f"{n}_x{key(m)}": config(cfg, n, m, 0) for n in NORMS for m in cfg.multipliers}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    acc = m["val_accuracy"]
    bn, none = acc["batch"], acc["none"]
    one, top = key(cfg.multipliers[0]), key(cfg.multipliers[-1])
    higher = [key(x) for x in cfg.multipliers[1:]]
    n = len(bn[one])
    rounded = lambda d: {k: [round(v, 3) for v in vs] for k, vs in d.items()}  # noqa: E731
    return judge([(f"BN trains at every rate: val accuracy >= {cfg.trains} for every multiplier and seed "
                   f"({rounded(bn)})", all(v >= cfg.trains for vs in bn.values() for v in vs)),
                  (f"BN at {', '.join(higher)}x is no more than {cfg.higher_rate_loss} below BN at {one}x for every "
                   f"seed", all(bn[k][s] >= bn[one][s] - cfg.higher_rate_loss for k in higher for s in range(n))),
                  (f"without BN the {top}x rate trains worse: no norm's val accuracy at {top}x is below BN's by "
                   f">= {cfg.bn_margin} for every seed (no norm: {rounded(none)})",
                   all(none[top][s] <= bn[top][s] - cfg.bn_margin for s in range(n)))],
                 refute=[(f"BN fails at {top}x: val accuracy < {cfg.trains} for every seed ({bn[top]})",
                          all(v < cfg.trains for v in bn[top])),
                         (f"BN at {top}x is more than 0.2 below BN at {one}x for every seed",
                          all(bn[top][s] < bn[one][s] - 0.2 for s in range(n)))])


def plot(result: dict, directory: Path) -> list[str]:
    m, c = result["measurements"], result["config"]
    fig, axes = figure(2)
    mults = [float(k) for k in m["val_accuracy"]["batch"]]
    curves(axes[0][0], {("BN" if n == "batch" else "no norm"): [mean(v) for v in m["val_accuracy"][n].values()]
                        for n in NORMS}, x=mults, xlabel="rate multiplier (x base lr)", ylabel="val accuracy",
           title=f"sigmoid MLP {c['depth']} x {c['width']}, base lr {c['base_lr']:g} (mean of seeds)")
    axes[0][0].set_xscale("log")
    series = {f"{'BN' if n == 'batch' else 'none'} {k}x": cs[0] for n in NORMS
              for k, cs in m["val_accuracy_curve"][n].items()}
    curves(axes[0][1], series, x=list(range(1, c["epochs"] + 1)), xlabel="epoch", ylabel="val accuracy",
           title="seed 0")
    return [save(fig, directory, "batchnorm_lr.png")]


def summary(m: dict) -> str:
    acc = m["val_accuracy"]
    return "; ".join(f"{'BN' if n == 'batch' else 'none'} val acc " +
                     ", ".join(f"{k}x {mean(v):.3f}" for k, v in acc[n].items()) for n in NORMS)


EXPERIMENT = Experiment(
    name="batchnorm_lr",
    claim="batch norm trains a sigmoid net at 1x, 5x and 30x the rate; without it the higher rates train worse",
    source="notes on normalisation: what BN does, a larger learning rate (seeds 000, 001); "
           "Ioffe & Szegedy 2015 (BN-x5, BN-x30, BN-x5-Sigmoid)",
    setup="trainwell.train on digits (8x8, 1149 training rows): MLP 4 x 64 sigmoid units, Xavier-normal init, "
          "model.norm none or batch (before the activation), SGD with momentum 0.9 at lr 0.01 x 1, 5, 30, "
          "batch 32, 10 epochs (--quick: 3 epochs, one seed); val accuracy at the end",
    criterion="confirmed if, for every seed, BN's val accuracy is >= 0.5 at 1x, 5x and 30x, BN's at 5x and 30x "
              "is no more than 0.05 below its 1x accuracy, and without BN the 30x run's val accuracy is at least "
              "0.05 below BN's; refuted if BN's val accuracy at 30x is < 0.5 for every seed, or more than 0.2 "
              "below its 1x accuracy for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=3, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("val_accuracy",))
