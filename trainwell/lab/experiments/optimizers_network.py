"""The optimizers of the notes on a network, each at its best rate from a grid: momentum and adaptive rates beat GD."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from trainwell.config import resolve_config
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, curves, figure, save
from trainwell.runs import configured_data

FIRST_ORDER = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw")
JUDGED = ("momentum", "nesterov", "rmsprop", "adam")  # each must beat plain GD ("sgd")
FULL_BATCH = 1_000_000  # >= the training split: one update per epoch (L-BFGS)


@dataclass(frozen=True)
class Settings:
    epochs: int = 10
    batch_size: int = 64
    depth: int = 2
    width: int = 32
    grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    adadelta_shift: float = 10.0      # Adadelta's default rate is 1: its grid is the grid x 10
    lbfgs_grid: tuple[float, ...] = (0.1, 1.0)
    adamw_decay: float = 0.01         # AdamW's decoupled weight decay (its usual default)
    factor: float = 0.8               # a judged optimizer must end at <= factor x GD's training loss
    seeds: int = 2


def rates(cfg: Settings, name: str) -> tuple[float, ...]:
    if name == "lbfgs":
        return cfg.lbfgs_grid
    return tuple(r * cfg.adadelta_shift for r in cfg.grid) if name == "adadelta" else cfg.grid


def config(cfg: Settings, name: str, lr: float, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it); L-BFGS takes the whole split per update.
    AdamW's decoupled decay comes from ``reg.weight_decay`` (0 by default, which would make it Adam): 0.01 here."""
    return base_config(seed=seed, data={"name": "digits",
                                        "batch_size": FULL_BATCH if name == "lbfgs" else cfg.batch_size},
                       model={"depth": cfg.depth, "width": cfg.width}, optim={"name": name, "lr": lr},
                       reg={"weight_decay": cfg.adamw_decay if name == "adamw" else 0.0},
                       train={"epochs": cfg.epochs})


def finite(x: float | str) -> float:
    """A loss as a number, a diverged one (NaN or inf, stored in JSON as a string) as inf."""
    x = float(x)
    return x if math.isfinite(x) else math.inf


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = configured_data(resolve_config(config(cfg, "sgd", 0.1, 0)).data)  # loaded once
    names = (*FIRST_ORDER, "lbfgs")
    grid_val, grid_train, best_lr, final, curve = {}, {}, {}, {}, {}
    for name in names:
        grid_val[name], grid_train[name], best_lr[name], final[name], curve[name] = [], [], [], [], []
        for seed in seeds:
            runs = {lr: quiet_train(config(cfg, name, lr, seed), data=data).history for lr in rates(cfg, name)}
            vals = {lr: finite(h[-1]["val_loss"]) for lr, h in runs.items()}
            best = min(vals, key=vals.get)  # chosen on the validation split
            grid_val[name].append([vals[lr] for lr in rates(cfg, name)])
            grid_train[name].append([finite(runs[lr][-1]["train_loss"]) for lr in rates(cfg, name)])
            best_lr[name].append(best)
            final[name].append(finite(runs[best][-1]["train_loss"]))
            curve[name].append([h["train_loss"] for h in runs[best]])
    return {"final_train_loss": final, "best_lr": best_lr, "grid": {n: list(rates(cfg, n)) for n in names},
            "grid_val_loss": grid_val, "grid_train_loss": grid_train, "train_loss_curve": curve,
            "configs": {n: config(cfg, n, best_lr[n][0], seeds[0]) for n in names}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    f = {o: [finite(v) for v in vs] for o, vs in m["final_train_loss"].items()}
    b, g = m["best_lr"], m["grid"]
    n = len(f["sgd"])
    checks = [(f"{o} at its best rate ends <= {cfg.factor} x GD's training loss for every seed "
               f"({[round(v, 4) for v in f[o]]} vs GD {[round(v, 4) for v in f['sgd']]})",
               all(f[o][s] <= cfg.factor * f["sgd"][s] for s in range(n))) for o in JUDGED]
    edge = {o: b[o] for o in ("sgd", *JUDGED) if any(r in (g[o][0], g[o][-1]) for r in b[o])}
    checks.append((f"no best rate of GD or a judged optimizer at the grid's edge (at the edge: {edge})", not edge))
    return judge(checks, refute=[("GD ends lower than each of momentum, Nesterov, RMSProp and Adam for every seed",
                                  all(f["sgd"][s] < min(f[o][s] for o in JUDGED) for s in range(n)))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(3)
    curves(axes[0][0], {o: c[0] for o, c in m["train_loss_curve"].items()}, xlabel="epoch",
           ylabel="training loss at the best rate (seed 0)", log=True, title="training loss")
    for o, vals in m["grid_val_loss"].items():
        pts = [(r, v) for r, v in zip(m["grid"][o], vals[0]) if finite(v) < 1e6]
        axes[0][1].plot([r for r, _ in pts], [v for _, v in pts], marker=".", label=o)
    axes[0][1].set(xscale="log", yscale="log", xlabel="learning rate", ylabel="final validation loss (seed 0)",
                   title="the grid")
    axes[0][1].legend(fontsize=7)
    bars(axes[0][2], {o: mean([finite(x) for x in v]) for o, v in m["final_train_loss"].items()}, log=True,
         ylabel="final training loss at the best rate", title="at the best rate (mean over seeds)")
    return [save(fig, directory, "optimizers.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{o}: {mean([finite(x) for x in m['final_train_loss'][o]]):.4f} (lr {m['best_lr'][o][0]:g})"
                     for o in m["final_train_loss"])


EXPERIMENT = Experiment(
    name="optimizers_network",
    claim="on a network, momentum, Nesterov, RMSProp and Adam, each at its best rate, train faster than plain GD",
    source="notes on optimizers: GD, momentum, AdaGrad, RMSProp, Adam (seed 002); Kingma & Ba 2015",
    setup="trainwell.train: MLP 2 x 32 (ReLU) on digits, batch 64, 10 epochs; each of sgd, momentum, nesterov, "
          "adagrad, rmsprop, adadelta, adam, adamw (decoupled decay 0.01) at lr 1e-4, 1e-3, 1e-2, 0.1, 1 "
          "(Adadelta x10), L-BFGS on the whole split at lr 0.1 and 1; per seed the rate with the lowest final "
          "validation loss is chosen and its final training loss reported; Newton is left out (its exact Hessian takes ~4 s a step at 1,210 "
          "parameters; optimizers_quadratic measures it)",
    criterion="confirmed if, for every seed, momentum, Nesterov, RMSProp and Adam at their best rates each end "
              "with a final training loss <= 0.8 x plain GD's (sgd at its best rate) and none of these five best "
              "rates lies at the grid's edge; refuted if GD ends lower than each of the four for every seed; "
              "otherwise inconclusive (AdaGrad, Adadelta, AdamW and L-BFGS are measured, not judged)",
    config=Settings(), quick=Settings(epochs=2, batch_size=128, grid=(1e-3, 1e-2, 1e-1), lbfgs_grid=(1.0,), seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("final_train_loss", "best_lr"))
