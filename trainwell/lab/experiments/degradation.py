"""Deeper plain nets train worse than shallower ones; with skip connections they do not (He et al. 2016)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save

ARCHS = ("plain", "residual")


@dataclass(frozen=True)
class Settings:
    depths: tuple[int, ...] = (3, 11, 31)   # odd: a stem layer, then blocks of two layers
    width: int = 64
    epochs: int = 10
    n_samples: int = 2000
    lr: float = 0.05
    batch_size: int = 64
    margin: float = 0.1          # "worse" means a final training loss higher by more than this
    seeds: int = 2


def config(cfg: Settings, arch: str, depth: int, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": cfg.batch_size},
                       model={"name": "mlp", "depth": depth, "width": cfg.width, "activation": "relu",
                              "init": "he_normal", "norm": "batch", "residual": arch == "residual"},
                       optim={"name": "momentum", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data("mnist1d", n_samples=cfg.n_samples)  # generated once, the same rows for every run
    final = {a: {str(d): [] for d in cfg.depths} for a in ARCHS}
    curve = {a: {str(d): [] for d in cfg.depths} for a in ARCHS}
    acc = {a: {str(d): [] for d in cfg.depths} for a in ARCHS}
    for arch in ARCHS:
        for depth in cfg.depths:
            for seed in seeds:
                r = quiet_train(config(cfg, arch, depth, seed), data=data)
                final[arch][str(depth)].append(r.history[-1]["train_loss"])
                curve[arch][str(depth)].append([h["train_loss"] for h in r.history])
                acc[arch][str(depth)].append(r.history[-1]["val_accuracy"])
    return {"final_train_loss": final, "train_loss_curve": curve, "val_accuracy": acc,
            "configs": {f"{a}_{d}": config(cfg, a, d, 0) for a in ARCHS for d in cfg.depths}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    f, lo, hi, e = m["final_train_loss"], str(min(cfg.depths)), str(max(cfg.depths)), cfg.margin
    plain = list(zip(f["plain"][lo], f["plain"][hi]))
    res = list(zip(f["residual"][lo], f["residual"][hi]))
    deep = list(zip(f["plain"][hi], f["residual"][hi]))
    r4 = lambda ps: [(round(a, 3), round(b, 3)) for a, b in ps]  # noqa: E731
    return judge([(f"plain depth {hi} ends > {e} above plain depth {lo} for every seed ({r4(plain)})",
                   all(b > a + e for a, b in plain)),
                  (f"residual depth {hi} ends <= {e} above residual depth {lo} for every seed ({r4(res)})",
                   all(b <= a + e for a, b in res)),
                  (f"residual depth {hi} ends > {e} below plain depth {hi} for every seed ({r4(deep)})",
                   all(r < p - e for p, r in deep))],
                 refute=[(f"plain depth {hi} ends no higher than plain depth {lo} for every seed ({r4(plain)})",
                          all(b <= a for a, b in plain))])


def plot(result: dict, directory: Path) -> list[str]:
    m, depths = result["measurements"], result["config"]["depths"]
    fig, axes = figure(2)
    curves(axes[0][0], {a: [mean(m["final_train_loss"][a][str(d)]) for d in depths] for a in ARCHS}, x=depths,
           xlabel="depth (hidden layers)", ylabel="final training loss (mean over seeds)",
           title=f"MLP x {result['config']['width']} with BN on MNIST-1D")
    hi = str(max(depths))
    series = {f"{a} depth {d}": m["train_loss_curve"][a][d][0] for a in ARCHS for d in (str(min(depths)), hi)}
    curves(axes[0][1], series, x=list(range(1, len(next(iter(series.values()))) + 1)), xlabel="epoch",
           ylabel="training loss (seed 0)", title="shallowest and deepest")
    return [save(fig, directory, "degradation.png")]


def summary(m: dict) -> str:
    return "; ".join(f"{a}: " + ", ".join(f"depth {d} loss {mean(v):.3f}" for d, v in m["final_train_loss"][a].items())
                     for a in ARCHS)


EXPERIMENT = Experiment(
    name="degradation",
    claim="deeper plain nets train worse (a higher training loss, so not overfitting); residual ones do not",
    source="notes on deep architectures: residual connections (seed 003); He et al. 2016",
    setup="trainwell.train on MNIST-1D (2000 rows), ReLU MLPs of width 64 with batch norm and He init, depth 3, 11 "
          "and 31, plain (model.residual=false) and with skip connections over blocks of two layers "
          "(model.residual=true), SGD with momentum 0.9, lr 0.05, batch 64, 10 epochs; the same data for every run; "
          "the configs are in measurements.configs",
    criterion="confirmed if, for every seed, the plain net's final training loss at the largest depth is more than "
              "0.1 above its loss at the smallest depth, the residual net's at the largest depth is at most 0.1 above "
              "its own at the smallest depth, and the residual net at the largest depth ends more than 0.1 below the "
              "plain one; refuted if the deepest plain net ends no higher than the shallowest for every seed; "
              "otherwise inconclusive",
    config=Settings(), quick=Settings(depths=(3, 15), width=32, epochs=4, n_samples=600, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("final_train_loss",))
