"""Clipping the gradient's norm stops exploding gradients from wrecking a tanh RNN (Pascanu et al. 2013)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.config import resolve_config
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, quiet_train
from trainwell.lab.plotting import curves, figure, save
from trainwell.loop import Callback, GradientClipping
from trainwell.runs import configured_data


@dataclass(frozen=True)
class Settings:
    clippings: tuple[float | None, ...] = (None, 5.0, 1.0)   # clip.max_norm; None: no clipping
    judged: float = 1.0          # the clipping judged against none
    n_samples: int = 2000
    width: int = 64
    lr: float = 0.1
    batch_size: int = 32
    epochs: int = 10
    spike: float = 20.0          # "explodes": the largest norm >= spike x the median
    gain: float = 0.9            # the clipped run must end at <= gain x the unclipped run's loss
    seeds: int = 3


class GradNorms(Callback):
    """The global gradient norm of every update, before any clipping (clipping's own ``last_norm`` if it clips)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_after_backward(self, trainer) -> None:
        clip = next((cb for cb in trainer.callbacks if isinstance(cb, GradientClipping)), None)
        if clip is not None and clip.last_norm is not None:  # clipping ran first: its norm is the raw one
            self.norms.append(float(clip.last_norm))
            return
        grads = [p.grad.detach().flatten() for p in trainer.model.parameters() if p.grad is not None]
        self.norms.append(torch.cat(grads).norm().item())


def label(max_norm: float | None) -> str:
    return "none" if max_norm is None else f"max_norm {max_norm:g}"


def config(cfg: Settings, max_norm: float | None, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it): tanh RNN, orthogonal init x tanh's gain 5/3."""
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": cfg.batch_size},
                       model={"name": "rnn", "depth": 1, "width": cfg.width, "activation": "tanh",
                              "init": "orthogonal"},
                       optim={"name": "sgd", "lr": cfg.lr}, clip={"max_norm": max_norm}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = configured_data(resolve_config(config(cfg, None, 0)).data)  # generated once
    labels = [label(c) for c in cfg.clippings]
    med, top, final, norms, loss_curve = ({b: [] for b in labels} for _ in range(5))
    for c, b in zip(cfg.clippings, labels):
        for seed in seeds:
            probe = GradNorms()
            r = quiet_train(config(cfg, c, seed), callbacks=[probe], data=data)
            finite = [n for n in probe.norms if math.isfinite(n)]
            med[b].append(statistics.median(finite) if finite else None)
            top[b].append(max(finite) if finite else None)
            final[b].append(r.history[-1]["train_loss"])
            norms[b].append(probe.norms)
            loss_curve[b].append([h["train_loss"] for h in r.history])
    return {"grad_norm_median": med, "grad_norm_max": top, "final_loss": final, "grad_norm": norms,
            "train_loss_curve": loss_curve, "nonfinite_norms": {b: [sum(not math.isfinite(n) for n in ns)
                                                                   for ns in norms[b]] for b in labels},
            "configs": {b: config(cfg, c, seeds[0]) for c, b in zip(cfg.clippings, labels)}}


def num(x: float | str | None) -> float:
    """A loss or norm; NaN/inf (stored as strings) and None count as inf."""
    x = math.inf if x is None else float(x)
    return x if math.isfinite(x) else math.inf


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    off, on = "none", label(cfg.judged)
    f = {b: [num(v) for v in vs] for b, vs in m["final_loss"].items()}
    top, med, bad = m["grad_norm_max"], m["grad_norm_median"], m["nonfinite_norms"]
    seeds = range(len(f[off]))
    explodes = all(bad[off][s] > 0 or num(top[off][s]) >= cfg.spike * num(med[off][s]) for s in seeds)
    return judge(
        [(f"without clipping the gradient explodes for every seed: its largest norm >= {cfg.spike:g} x the median, "
          f"or a non-finite norm (max {top[off]}, median {med[off]}, non-finite {bad[off]})", explodes),
         (f"with {on} the final training loss is finite and <= {cfg.gain} x the unclipped run's for every seed "
          f"({m['final_loss'][on]} vs {m['final_loss'][off]})",
          all(f[on][s] < math.inf and f[on][s] <= cfg.gain * f[off][s] for s in seeds))],
        refute=[(f"with {on} the final loss is higher than the (finite) unclipped run's for every seed",
                 all(f[off][s] < math.inf and f[on][s] > f[off][s] for s in seeds))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    curves(axes[0][0], {b: [num(n) for n in ns[0]] for b, ns in m["grad_norm"].items()}, xlabel="update",
           ylabel="global gradient norm before clipping (seed 0)", log=True, title="gradient norms")
    curves(axes[0][1], {b: [num(v) for v in c[0]] for b, c in m["train_loss_curve"].items()},
           x=list(range(1, len(next(iter(m["train_loss_curve"].values()))[0]) + 1)), xlabel="epoch",
           ylabel="training loss (seed 0)", log=True, title="training loss (missing: non-finite)")
    return [save(fig, directory, "clipping.png", title="tanh RNN on MNIST-1D, SGD lr "
                 f"{result['config']['lr']}")]


def summary(m: dict) -> str:
    return ", ".join(f"{b}: grad norm median {statistics.median(num(v) for v in m['grad_norm_median'][b]):.3g} "
                     f"max {max(num(v) for v in m['grad_norm_max'][b]):.3g}, loss "
                     f"{statistics.median(num(v) for v in m['final_loss'][b]):.3f}" for b in m["final_loss"])


EXPERIMENT = Experiment(
    name="gradient_clipping_rnn",
    claim="clipping the gradient's norm keeps exploding gradients from wrecking the training of a tanh RNN",
    source="notes on exploding and vanishing gradients (seed 000); Pascanu, Mikolov & Bengio 2013",
    setup="trainwell.train with a callback reading each update's global gradient norm before clipping: tanh "
          "RNN (1 x 64, orthogonal init times tanh's gain 5/3, so the recurrent matrix's spectral radius is "
          "5/3 > 1) over the 40 steps of MNIST-1D (2,000 rows), plain SGD lr 0.1, batch 32, 10 epochs, "
          "with clip.max_norm none, 5 and 1",
    criterion="confirmed if, for every seed, without clipping the largest gradient norm is >= 20 x the median "
              "(or a norm is non-finite) and with max_norm 1 the final training loss is finite and <= 0.9 x the "
              "unclipped run's (non-finite = infinite); refuted if with max_norm 1 the final loss is higher than a finite "
              "unclipped run's for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(clippings=(None, 1.0), n_samples=1000, epochs=4, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("grad_norm_median", "grad_norm_max", "final_loss"))
