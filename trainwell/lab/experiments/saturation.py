"""In a deep sigmoid net the top hidden layer saturates at 0 early in training; a tanh net's does not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, probed, quiet_train
from trainwell.lab.plotting import curves, figure, save
from trainwell.loop import Callback

ACTIVATIONS = ("sigmoid", "tanh")


@dataclass(frozen=True)
class Settings:
    epochs: int = 10
    n_samples: int = 2000
    depth: int = 4
    width: int = 64
    lr: float = 0.1
    batch_size: int = 10
    every: int = 16
    seeds: int = 2


class LayerMeans(Callback):
    """Every ``every`` updates: each hidden layer's mean output and saturated share on the validation rows."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.steps: list[int] = []
        self.means: list[list[float]] = []
        self.saturated: list[list[float]] = []

    def on_fit_start(self, trainer) -> None:
        self._measure(trainer)

    def on_batch_end(self, trainer) -> None:
        if trainer.step % self.every == 0:
            self._measure(trainer)

    def _measure(self, trainer) -> None:
        with torch.no_grad(), probed(trainer.model) as probe:
            trainer.model(trainer.val_split.x)
            rows = probe.layers()
        self.steps.append(trainer.step)
        self.means.append([r["mean"] for r in rows])
        self.saturated.append([r["saturated"] for r in rows])


def config(cfg: Settings, activation: str, seed: int) -> dict:
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": cfg.batch_size},
                       model={"depth": cfg.depth, "width": cfg.width, "activation": activation,
                              "init": "standard_uniform"},
                       optim={"name": "sgd", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    layer_mean, saturated, final_loss, steps = {}, {}, {}, []
    for act in ACTIVATIONS:
        layer_mean[act], saturated[act], final_loss[act] = [], [], []
        for seed in seeds:
            probe = LayerMeans(cfg.every)
            r = quiet_train(config(cfg, act, seed), callbacks=[probe])
            steps = probe.steps
            layer_mean[act].append([list(c) for c in zip(*probe.means)])      # (seed, layer, record)
            saturated[act].append([list(c) for c in zip(*probe.saturated)])
            final_loss[act].append(r.history[-1]["train_loss"])
    return {"layer_mean": layer_mean, "saturated_share": saturated, "final_loss": final_loss, "steps": steps}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    half = len(m["steps"]) // 2 + 1
    sig_top = [seed[-1] for seed in m["layer_mean"]["sigmoid"]]
    tanh_top = [seed[-1] for seed in m["saturated_share"]["tanh"]]
    early_min = [min(t[:half]) for t in sig_top]
    return judge([(f"sigmoid's top layer mean falls below 0.1 in the first half (minima {early_min})",
                   all(v < 0.1 for v in early_min)),
                  (f"tanh's top layer saturated share stays below 0.2 (maxima {[max(t) for t in tanh_top]})",
                   all(max(t) < 0.2 for t in tanh_top))],
                 refute=[(f"sigmoid's top layer mean never falls below 0.3 (minima {[min(t) for t in sig_top]})",
                          all(min(t) >= 0.3 for t in sig_top))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    for ax, act in zip(axes[0], ACTIVATIONS):
        layers = m["layer_mean"][act][0]
        curves(ax, {f"layer {i + 1}": c for i, c in enumerate(layers)}, x=m["steps"], xlabel="update",
               ylabel="mean activation (validation rows)", title=f"{act}, seed 0")
    return [save(fig, directory, "layer_means.png")]


def summary(m: dict) -> str:
    top = mean([min(s[-1]) for s in m["layer_mean"]["sigmoid"]])
    return (f"sigmoid top-layer mean min {top:.3f}; final loss " +
            ", ".join(f"{a} {mean(m['final_loss'][a]):.3f}" for a in ACTIVATIONS))


EXPERIMENT = Experiment(
    name="saturation",
    claim="the top hidden layer of a deep sigmoid net saturates (at 0) early in training; tanh's does not",
    source="notes on activation functions and saturation (seed 000); Glorot & Bengio 2010, Fig. 2",
    setup="trainwell.train: MLP 4 x 64 with standard uniform init U[-1/sqrt(n), 1/sqrt(n)] on MNIST-1D, plain SGD "
          "lr 0.1, batch 10 (as Glorot & Bengio); every 16 updates each layer's mean output on the validation rows",
    criterion="confirmed if, for every seed, the sigmoid net's top hidden layer has a mean activation below 0.1 "
              "at some point in the first half of training, and the tanh net's top layer never has more than "
              "20% saturated units (|h| > 0.949); refuted if sigmoid's top-layer mean never falls below 0.3",
    config=Settings(), quick=Settings(epochs=2, n_samples=1000, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("layer_mean", "final_loss"))
