"""After one large step many ReLUs die (no positive output on any input, so no gradient); Leaky ReLUs recover."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, probed, quiet_train
from trainwell.lab.plotting import curves, figure, save
from trainwell.loop import Callback

ACTIVATIONS = ("relu", "leaky_relu")


@dataclass(frozen=True)
class Settings:
    epochs: int = 8
    n_samples: int = 2000
    depth: int = 3
    width: int = 128
    lr: float = 0.05
    big_step_at: int = 20        # the update that is taken at big_factor x the rate
    big_factor: float = 100.0
    every: int = 5               # measure every N updates
    seeds: int = 2


class BigStep(Callback):
    """One update at ``factor`` x the rate; every ``every`` updates, the share of dead units on the validation rows."""

    def __init__(self, at: int, factor: float, every: int) -> None:
        self.at, self.factor, self.every = at, factor, every
        self.steps: list[int] = []
        self.dead: list[float] = []

    def on_batch_start(self, trainer) -> None:
        if trainer.step == self.at:
            for g in trainer.optimizer.param_groups:
                g["lr"] *= self.factor

    def on_batch_end(self, trainer) -> None:
        if trainer.step == self.at + 1:
            for g in trainer.optimizer.param_groups:
                g["lr"] /= self.factor
        if trainer.step % self.every == 0 or trainer.step == self.at + 1:
            with torch.no_grad(), probed(trainer.model) as probe:
                trainer.model(trainer.val_split.x)
                self.steps.append(trainer.step)
                self.dead.append(mean([row["inactive"] for row in probe.layers()]))


def config(cfg: Settings, activation: str, seed: int) -> dict:
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": 64},
                       model={"depth": cfg.depth, "width": cfg.width, "activation": activation, "init": "he_normal"},
                       optim={"name": "sgd", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    dead, steps, before, after, end, acc = {}, None, {}, {}, {}, {}
    for act in ACTIVATIONS:
        dead[act], before[act], after[act], end[act], acc[act] = [], [], [], [], []
        for seed in seeds:
            probe = BigStep(cfg.big_step_at, cfg.big_factor, cfg.every)
            r = quiet_train(config(cfg, act, seed), callbacks=[probe])
            steps = probe.steps
            i = probe.steps.index(cfg.big_step_at + 1)
            dead[act].append(probe.dead)
            before[act].append(probe.dead[i - 1] if i else 0.0)
            after[act].append(probe.dead[i])
            end[act].append(probe.dead[-1])
            acc[act].append(r.history[-1]["val_accuracy"])
    return {"dead_fraction": dead, "steps": steps, "dead_before": before, "dead_after_big_step": after,
            "dead_at_end": end, "val_accuracy": acc}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    b, a, e = m["dead_before"], m["dead_after_big_step"], m["dead_at_end"]
    n = len(e["relu"])
    return judge([(f"ReLU's dead share rises by >= 0.2 at the big step (before {b['relu']}, after {a['relu']})",
                   all(a["relu"][s] - b["relu"][s] >= 0.2 for s in range(n))),
                  (f"ReLU's stay dead: share at the end >= 0.2 ({e['relu']})", all(v >= 0.2 for v in e["relu"])),
                  (f"Leaky ReLU's share at the end <= half ReLU's ({e['leaky_relu']})",
                   all(e["leaky_relu"][s] <= 0.5 * e["relu"][s] for s in range(n)))],
                 refute=[(f"no ReLU died: share at the end < 0.05 ({e['relu']})", all(v < 0.05 for v in e["relu"]))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1)
    series = {f"{a} seed {s}": d for a, ds in m["dead_fraction"].items() for s, d in enumerate(ds)}
    curves(axes[0][0], series, x=m["steps"], xlabel="update", ylabel="share of units dead on every row",
           title=f"one step at {result['config']['big_factor']:g}x the rate (update {result['config']['big_step_at']})")
    axes[0][0].axvline(result["config"]["big_step_at"], color="grey", ls="--")
    return [save(fig, directory, "dead_units.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{a}: dead {mean(m['dead_before'][a]):.2f} -> {mean(m['dead_after_big_step'][a]):.2f} "
                     f"-> end {mean(m['dead_at_end'][a]):.2f}" for a in ACTIVATIONS)


EXPERIMENT = Experiment(
    name="dead_relu",
    claim="ReLUs die after a large step (they output 0 on every input, so get no gradient); Leaky ReLU does not",
    source="notes on activation functions: the dying ReLU (seed 001)",
    setup="trainwell.train with a callback: MLP 3 x 128 (He init) on MNIST-1D, plain SGD lr 0.05, batch 64; "
          "update 20 is taken at 100x the rate; every 5 updates, the share of hidden units with no positive "
          "output on any validation row",
    criterion="confirmed if, for every seed, ReLU's dead share rises by at least 0.2 at the big step and is still "
              ">= 0.2 at the end, while Leaky ReLU's (units with no positive output) is at most half of ReLU's at "
              "the end; refuted if ReLU's share at the end is < 0.05 for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=3, n_samples=1000, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("dead_fraction",))
