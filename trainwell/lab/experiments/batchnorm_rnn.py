"""Batch norm in an RNN, in the four places of the notes, and layer norm: BN of the summed pre-activation is poor,
BN of the input term alone overfits, separate per-step BN (Cooijmans et al. 2017) is the better BN, BN does not do
well in RNNs, and layer norm works."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, figure, save

PLACEMENTS = ("none", "batch_sum", "batch_input", "batch_step", "batch_between", "layer")
BATCH = ("batch_sum", "batch_input", "batch_step", "batch_between")


@dataclass(frozen=True)
class Settings:
    depth: int = 2               # two stacked layers, so that BN between them (vertical) exists
    width: int = 32
    epochs: int = 8
    batch_size: int = 64
    lr: float = 5e-3             # Adam
    seeds: int = 2


def config(cfg: Settings, placement: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": "digits", "batch_size": cfg.batch_size},
                       model={"name": "rnn", "depth": cfg.depth, "width": cfg.width, "activation": "tanh",
                              "rnn_norm": placement},
                       optim={"name": "adam", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data("digits")  # each 8 x 8 image read row by row: 8 steps of 8 features
    val, train, gap = ({p: [] for p in PLACEMENTS} for _ in range(3))
    for placement in PLACEMENTS:
        for seed in seeds:
            r = quiet_train(config(cfg, placement, seed), data=data)
            val[placement].append(r.metrics["val"]["accuracy"])
            train[placement].append(r.metrics["train"]["accuracy"])
            gap[placement].append(r.metrics["train"]["accuracy"] - r.metrics["val"]["accuracy"])
    return {"val_accuracy": val, "train_accuracy": train, "gap": gap,
            "configs": {p: config(cfg, p, 0) for p in PLACEMENTS}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    v, g = m["val_accuracy"], m["gap"]
    n = len(v["none"])
    r = lambda xs: [round(x, 3) for x in xs]  # noqa: E731
    best_bn = [max(v[p][s] for p in BATCH) for s in range(n)]
    return judge(
        [(f"BN of the sum is poor: batch_sum's val accuracy is >= 0.01 below batch_step's for every seed "
          f"({r(v['batch_sum'])} vs {r(v['batch_step'])})",
          all(v["batch_sum"][s] <= v["batch_step"][s] - 0.01 for s in range(n))),
         (f"BN of the input alone overfits: batch_input's train - val gap is >= 0.01 above the plain RNN's for every "
          f"seed ({r(g['batch_input'])} vs {r(g['none'])})",
          all(g["batch_input"][s] >= g["none"][s] + 0.01 for s in range(n))),
         (f"layer norm works: its val accuracy is no more than 0.01 below the plain RNN's for every seed "
          f"({r(v['layer'])} vs {r(v['none'])})", all(v["layer"][s] >= v["none"][s] - 0.01 for s in range(n))),
         (f"BN does not do well in an RNN: no BN placement beats the plain RNN by more than 0.02 for any seed "
          f"(best BN {r(best_bn)})", all(best_bn[s] <= v["none"][s] + 0.02 for s in range(n)))],
        refute=[("batch_sum beats batch_step by >= 0.02 for every seed",
                 all(v["batch_sum"][s] >= v["batch_step"][s] + 0.02 for s in range(n))),
                ("a BN placement beats both the plain RNN and layer norm by >= 0.05 for every seed",
                 any(all(v[p][s] >= max(v["none"][s], v["layer"][s]) + 0.05 for s in range(n)) for p in BATCH)),
                ("layer norm ends >= 0.05 below the plain RNN for every seed",
                 all(v["layer"][s] <= v["none"][s] - 0.05 for s in range(n)))])


def plot(result: dict, directory: Path) -> list[str]:
    m, c = result["measurements"], result["config"]
    fig, axes = figure(2)
    bars(axes[0][0], {p: mean(m["val_accuracy"][p]) for p in PLACEMENTS}, ylabel="val accuracy (mean of seeds)",
         title=f"tanh RNN {c['depth']} x {c['width']} on digits rows")
    bars(axes[0][1], {p: mean(m["gap"][p]) for p in PLACEMENTS}, ylabel="train - val accuracy",
         title="generalisation gap")
    return [save(fig, directory, "rnn_norms.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{p} {mean(m['val_accuracy'][p]):.3f}" for p in PLACEMENTS)


EXPERIMENT = Experiment(
    name="batchnorm_rnn",
    claim="in an RNN, BN of the summed pre-activation is poor, BN of the input term alone overfits, separate per-step "
          "BN is the better BN, BN does not do well overall, and layer norm works",
    source="notes on normalisation: BN in RNNs, its four placements, and layer norm (seed 001); Cooijmans et al. "
           "2017; Ba et al. 2016",
    setup="trainwell.train on digits read row by row (8 steps of 8 features): tanh RNN, 2 stacked layers of 32, "
          "model.rnn_norm none, batch_sum (phi(BN(W_h h + W_x x))), batch_input (phi(W_h h + BN(W_x x))), "
          "batch_step (phi(BN_t(W_h h) + BN_t(W_x x)), statistics and gamma/beta per step, gamma 0.1), "
          "batch_between (BN between the stacked layers) or layer (phi(LN(W_h h + W_x x))); Adam lr 5e-3, batch "
          "64, 8 epochs (--quick: 1 epoch, one seed); accuracies in evaluation mode at the end",
    criterion="confirmed if, for every seed: batch_sum's val accuracy is >= 0.01 below batch_step's; batch_input's "
              "train - val accuracy gap is >= 0.01 above the plain RNN's; layer norm's val accuracy is no more "
              "than 0.01 below the plain RNN's; and no BN placement beats the plain RNN by more than 0.02. Refuted "
              "if, for every seed, batch_sum beats batch_step by >= 0.02, or one BN placement beats both the plain "
              "RNN and layer norm by >= 0.05, or layer norm ends >= 0.05 below the plain RNN; otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=1, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("val_accuracy",))
