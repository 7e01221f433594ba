"""At depth 30 a ReLU net trains from He's initialisation and stalls from Xavier's (He et al. 2015, Fig. 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save

INITS = ("xavier_normal", "he_normal")


@dataclass(frozen=True)
class Settings:
    depth: int = 30
    width: int = 64
    epochs: int = 12
    n_samples: int = 2000
    optimizer: str = "momentum"
    lr: float = 0.01
    batch_size: int = 64
    seeds: int = 2


def config(cfg: Settings, init: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": cfg.batch_size},
                       model={"name": "mlp", "depth": cfg.depth, "width": cfg.width, "activation": "relu",
                              "init": init},
                       optim={"name": cfg.optimizer, "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    final_loss, val_accuracy, curve = {}, {}, {}
    for init in INITS:
        final_loss[init], val_accuracy[init], curve[init] = [], [], []
        for seed in seeds:
            r = quiet_train(config(cfg, init, seed))
            final_loss[init].append(r.history[-1]["train_loss"])
            val_accuracy[init].append(r.history[-1]["val_accuracy"])
            curve[init].append([h["train_loss"] for h in r.history])
    return {"final_loss": final_loss, "val_accuracy": val_accuracy, "train_loss_curve": curve,
            "chance_loss": math.log(10), "configs": {i: config(cfg, i, 0) for i in INITS}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    fl, chance = m["final_loss"], m["chance_loss"]
    per_seed = list(zip(fl["he_normal"], fl["xavier_normal"]))
    return judge([(f"He's final loss < Xavier's - 0.1 for every seed ({per_seed})",
                   all(h < x - 0.1 for h, x in per_seed)),
                  (f"Xavier stalls: final loss > 0.9 ln 10 = {0.9 * chance:.2f} for every seed",
                   all(x > 0.9 * chance for x in fl["xavier_normal"]))],
                 refute=[("Xavier ends at a lower loss than He for every seed", all(x < h for h, x in per_seed))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1)
    series = {f"{i} seed {s}": c for i, cs in m["train_loss_curve"].items() for s, c in enumerate(cs)}
    curves(axes[0][0], series, x=list(range(1, len(next(iter(series.values()))) + 1)), xlabel="epoch",
           ylabel="training loss", title=f"ReLU MLP, depth {result['config']['depth']}")
    return [save(fig, directory, "deep_relu.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{i}: loss {mean(m['final_loss'][i]):.3f} val acc {mean(m['val_accuracy'][i]):.3f}"
                     for i in INITS)


EXPERIMENT = Experiment(
    name="init_deep_relu",
    claim="at depth 30, a ReLU net trains from He's initialisation and stalls from Xavier's",
    source="notes on weight initialisation (seed 001); He et al. 2015, Fig. 3",
    setup="trainwell.train: MLP of 30 ReLU layers x 64 units on MNIST-1D (2000 rows), SGD with momentum 0.9, "
          "lr 0.01, batch 64; the config of each run is in measurements.configs",
    criterion="confirmed if, for every seed, He's final training loss is below Xavier's by more than 0.1 and "
              "Xavier's stays above 0.9 ln 10 (stalled near chance); refuted if Xavier ends lower for every "
              "seed; otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=4, n_samples=1000, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("final_loss", "val_accuracy"))
