"""Random search beats a grid at equal budget, and TPE beats random search (Bergstra & Bengio 2012; Bergstra 2011)."""

from __future__ import annotations

import csv
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config
from trainwell.lab.plotting import curves, figure, save
from trainwell.selection import tune
from trainwell.selection.study import require_optuna

METHODS = ("grid", "random", "tpe")


@dataclass(frozen=True)
class Settings:
    budgets: tuple[int, ...] = (9, 16)   # trials; the grid of b trials is sqrt(b) x sqrt(b)
    lr_range: tuple[float, float] = (1e-4, 1.0)
    width_range: tuple[int, int] = (16, 128)
    epochs: int = 4
    batch_size: int = 64
    seeds: int = 2


def config(cfg: Settings, seed: int) -> dict:
    """The base config every trial starts from (``trainwell tune`` reruns the search with the spaces below)."""
    return base_config(seed=seed, data={"name": "digits", "batch_size": cfg.batch_size},
                       model={"depth": 1, "width": 32}, optim={"name": "momentum"},
                       train={"epochs": cfg.epochs, "threads": 1})


def space(cfg: Settings, method: str, budget: int) -> dict:
    """Random search and TPE draw lr log-uniformly and the width as an integer; the grid takes sqrt(budget)
    log-spaced rates x sqrt(budget) evenly spaced widths over the same ranges."""
    (lo, hi), (wlo, whi) = cfg.lr_range, cfg.width_range
    if method != "grid":
        return {"optim.lr": {"log_uniform": [lo, hi]}, "model.width": {"int": [wlo, whi]}}
    m = math.isqrt(budget)
    if m * m != budget or m < 2:
        raise ValueError(f"a grid budget must be a square >= 4, got {budget}")
    rates = [float(f"{math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (m - 1)):.3g}") for i in range(m)]
    widths = [round(wlo + i * (whi - wlo) / (m - 1)) for i in range(m)]
    return {"optim.lr": {"choice": rates}, "model.width": {"choice": widths}}


def trials(study_dir: Path) -> list[dict]:
    """The study's trials in order (trials.csv): value (the best epoch's validation accuracy; None if not
    complete) and parameters."""
    with open(study_dir / "trials.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["number"]))
    return [{"value": float(r["value"]) if r["state"] == "COMPLETE" and r["value"] else None,
             "lr": float(r["optim.lr"]), "width": int(float(r["model.width"]))} for r in rows]


def search(cfg: Settings, method: str, budget: int, seed: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="trainwell-lab-tune-") as tmp:
        tune(config(cfg, seed), space(cfg, method, budget), trials=budget, sampler=method, pruner="none",
             out=Path(tmp) / "study", study=f"{method}-{budget}", threads=1, plots=False)
        return trials(Path(tmp) / "study")


def best_so_far(values: list[float | None]) -> list[float | None]:
    out, best = [], None
    for v in values:
        if v is not None and (best is None or v > best):
            best = v
        out.append(best)
    return out


def run(cfg: Settings, seeds: list[int]) -> dict:
    require_optuna()  # the `tune` extra: one line if it is missing
    top = max(cfg.budgets)
    best = {m: {str(b): [] for b in cfg.budgets} for m in METHODS}
    history = {m: [] for m in METHODS}
    points = {m: [] for m in METHODS}
    for seed in seeds:
        for method in ("random", "tpe"):  # one study of the largest budget: its first b trials are a b-trial study
            t = search(cfg, method, top, seed)
            curve = best_so_far([x["value"] for x in t])
            for b in cfg.budgets:
                best[method][str(b)].append(curve[b - 1])
            history[method].append(curve)
            points[method].append(t)
        for b in cfg.budgets:  # a grid of b trials is its own study
            t = search(cfg, "grid", b, seed)
            best["grid"][str(b)].append(best_so_far([x["value"] for x in t])[-1])
            if b == top:
                history["grid"].append(best_so_far([x["value"] for x in t]))
                points["grid"].append(t)
    return {"best_val_accuracy": best, "best_so_far": history, "trials": points,
            "configs": {"base": config(cfg, seeds[0])},  # `trainwell tune base.yaml --space SPACE --sampler METHOD`
            "spaces": {f"{m}-{b}": space(cfg, m, b) for m in METHODS for b in cfg.budgets}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    b = str(max(cfg.budgets))
    acc = {k: [-1.0 if v is None else v for v in m["best_val_accuracy"][k][b]] for k in METHODS}
    g, r, t = acc["grid"], acc["random"], acc["tpe"]
    seeds = range(len(g))
    return judge([(f"at {b} trials random search's best validation accuracy >= the grid's for every seed ({r} vs {g})",
                   all(r[s] >= g[s] for s in seeds)),
                  (f"at {b} trials TPE's best >= random search's for every seed ({t} vs {r})",
                   all(t[s] >= r[s] for s in seeds))],
                 refute=[(f"at {b} trials the grid beats both random search and TPE for every seed",
                          all(g[s] > r[s] and g[s] > t[s] for s in seeds))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    series = {f"{k} seed {s}": c for k, cs in m["best_so_far"].items() for s, c in enumerate(cs)}
    curves(axes[0][0], series, x=None, xlabel="trials (the grid: one study of the largest budget)",
           ylabel="best validation accuracy so far", title="search progress")
    ax = axes[0][1]
    for i, (k, ts) in enumerate(m["trials"].items()):
        pts = [x for x in ts[0] if x["value"] is not None]
        ax.scatter([x["lr"] for x in pts], [x["width"] for x in pts], s=[10 + 200 * x["value"] for x in pts],
                   color=f"C{i}", alpha=0.6, label=k)
    ax.set(xscale="log", xlabel="learning rate", ylabel="width", title="trials of seed 0 (size: accuracy)")
    ax.legend(fontsize=7)
    return [save(fig, directory, "search.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{k}: " + " ".join(f"{b} trials {v[0]:.3f}" if v[0] is not None else f"{b} trials n/a"
                                         for b, v in m["best_val_accuracy"][k].items()) for k in METHODS)


EXPERIMENT = Experiment(
    name="hyperparameter_search",
    claim="at an equal budget of trials, random search finds a better configuration than a grid, and TPE a better "
          "one than random search",
    source="notes on hyper-parameters chosen on validation (seed 001); Bergstra & Bengio 2012, Bergstra et al. 2011",
    setup="trainwell.selection.tune (Optuna; no pruning, one torch thread) over optim.lr in [1e-4, 1] (log) and "
          "model.width in [16, 128] of an MLP 1 x width (ReLU) on digits, SGD with momentum 0.9, batch 64, 4 epochs "
          "a trial, scored by the best epoch's validation accuracy; random search and TPE: one 16-trial study each "
          "(its first 9 trials are a 9-trial search; TPE's first 10 are random, Optuna's default); the grid: "
          "3 x 3 and 4 x 4 log-spaced rates x evenly spaced widths; needs the tune extra (optuna)",
    criterion="confirmed if, for every seed, at 16 trials random search's best validation accuracy is >= the 4 x 4 "
              "grid's and TPE's is >= random search's; refuted if the grid beats both random search and TPE for "
              "every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(budgets=(4,), epochs=2, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("best_val_accuracy",))
