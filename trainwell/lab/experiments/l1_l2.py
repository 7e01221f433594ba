"""L1 gives exact zeros when applied as a proximal step; L2 gives small weights, none of them zero."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, figure, save

PENALTIES = {"none": {}, "l2": {"l2": 1e-2}, "l1_proximal": {"l1": 3e-3, "l1_mode": "proximal"},
             "l1_subgradient": {"l1": 3e-3, "l1_mode": "subgradient"}}


@dataclass(frozen=True)
class Settings:
    epochs: int = 20
    lr: float = 0.05
    width: int = 64
    seeds: int = 2


def config(cfg: Settings, penalty: str, seed: int) -> dict:
    return base_config(seed=seed, data={"name": "digits", "batch_size": 64}, reg=PENALTIES[penalty],
                       model={"depth": 1, "width": cfg.width}, optim={"name": "momentum", "lr": cfg.lr},
                       train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    zero, norm, acc, hist = ({p: [] for p in PENALTIES} for _ in range(4))
    for penalty in PENALTIES:
        for seed in seeds:
            r = quiet_train(config(cfg, penalty, seed))
            weights = torch.cat([p.detach().flatten() for n, p in r.model.named_parameters() if n.endswith("weight")])
            zero[penalty].append((weights == 0).float().mean().item())
            norm[penalty].append(weights.norm().item())
            acc[penalty].append(r.metrics["test"]["accuracy"])
            hist[penalty].append(torch.histc(weights.abs().clamp(max=0.5), bins=50, min=0, max=0.5).tolist())
    return {"zero_fraction": zero, "weight_norm": norm, "test_accuracy": acc, "abs_weight_histogram": hist}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    z, w = m["zero_fraction"], m["weight_norm"]
    return judge([(f"proximal L1: >= 20% exact zeros for every seed ({z['l1_proximal']})",
                   all(v >= 0.2 for v in z["l1_proximal"])),
                  (f"sub-gradient L1: < 1% exact zeros ({z['l1_subgradient']})",
                   all(v < 0.01 for v in z["l1_subgradient"])),
                  (f"L2: < 1% exact zeros ({z['l2']})", all(v < 0.01 for v in z["l2"])),
                  (f"L2: weight norm >= 20% below no penalty's for every seed ({w['l2']} vs {w['none']})",
                   all(a <= 0.8 * b for a, b in zip(w["l2"], w["none"])))],
                 refute=[("proximal L1 gives no more exact zeros than L2",
                          mean(z["l1_proximal"]) <= mean(z["l2"]))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    bars(axes[0][0], {p: mean(v) for p, v in m["zero_fraction"].items()}, ylabel="share of weights exactly 0",
         title="exact zeros")
    ax = axes[0][1]
    edges = [i * 0.01 for i in range(50)]
    for p, h in m["abs_weight_histogram"].items():
        ax.step(edges, [v + 1 for v in h[0]], where="post", label=p)
    ax.set(yscale="log", xlabel="|w| (clamped at 0.5)", ylabel="count + 1", title="weight magnitudes, seed 0")
    ax.legend(fontsize=7)
    return [save(fig, directory, "l1_l2.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{p}: zeros {mean(m['zero_fraction'][p]):.2f} |w| {mean(m['weight_norm'][p]):.1f}"
                     for p in PENALTIES)


EXPERIMENT = Experiment(
    name="l1_l2",
    claim="L1 applied as a proximal step gives exact zeros; L2 gives small weights, none exactly zero",
    source="notes on regularisation: L1 and L2 penalties (seed 000); Tibshirani 1996; Parikh & Boyd 2014",
    setup="trainwell.train of an MLP 1 x 64 on digits, SGD momentum lr 0.05, 20 epochs, with reg.l2 = 0.01, "
          "reg.l1 = 0.003 proximal (soft threshold after each step) or sub-gradient; every weight matrix counted",
    criterion="confirmed if proximal L1 leaves >= 20% of the weights exactly 0 and sub-gradient L1 and L2 leave "
              "< 1% for every seed, and L2's weight norm is at least 20% below the unpenalised one; refuted if "
              "proximal L1 gives no more exact zeros than L2",
    config=Settings(), quick=Settings(epochs=6, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("zero_fraction", "weight_norm"))
