"""Dropout narrows the gap between training and validation accuracy of a net that overfits (Srivastava et al. 2014)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save


@dataclass(frozen=True)
class Settings:
    data: str = "mnist1d"
    n_samples: int | None = 2000     # 1280 training rows: a 3 x 128 MLP overfits them
    test_fraction: float = 0.2
    ps: tuple[float, ...] = (0.0, 0.2, 0.5)   # drop probability after each hidden layer (inverted dropout)
    depth: int = 3
    width: int = 128
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3             # Adam
    narrower: float = 0.75       # the gap at the largest p is at most this x the gap without dropout
    seeds: int = 3


def config(cfg: Settings, p: float, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": cfg.data, "n_samples": cfg.n_samples, "batch_size": cfg.batch_size,
                                        "test_fraction": cfg.test_fraction},
                       model={"name": "mlp", "depth": cfg.depth, "width": cfg.width, "activation": "relu",
                              "dropout": p},
                       optim={"name": "adam", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data(cfg.data, n_samples=cfg.n_samples, test_fraction=cfg.test_fraction)
    gap, loss_gap, train, val, curve = ({f"{p:g}": [] for p in cfg.ps} for _ in range(5))
    for p in cfg.ps:
        for seed in seeds:
            r = quiet_train(config(cfg, p, seed), data=data)
            tr, va = r.metrics["train"], r.metrics["val"]  # both in evaluation mode (no units dropped)
            gap[f"{p:g}"].append(tr["accuracy"] - va["accuracy"])
            loss_gap[f"{p:g}"].append(va["loss"] - tr["loss"])
            train[f"{p:g}"].append(tr["accuracy"])
            val[f"{p:g}"].append(va["accuracy"])
            curve[f"{p:g}"].append([h["val_accuracy"] for h in r.history])
    return {"gap": gap, "loss_gap": loss_gap, "train_accuracy": train, "val_accuracy": val,
            "val_accuracy_curve": curve, "training_rows": len(data.train),
            "configs": {f"p{p:g}": config(cfg, p, 0) for p in cfg.ps}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    g = m["gap"]
    none, top = f"{cfg.ps[0]:g}", f"{cfg.ps[-1]:g}"
    middle = [f"{p:g}" for p in cfg.ps[1:-1]]
    n = len(g[none])
    r = {k: [round(x, 3) for x in v] for k, v in g.items()}
    return judge([(f"the gap at p = {top} is <= {cfg.narrower} x the gap without dropout for every seed ({r})",
                   all(g[top][s] <= cfg.narrower * g[none][s] for s in range(n))),
                  (f"the gap at p = {', '.join(middle)} is below the gap without dropout for every seed",
                   all(g[k][s] < g[none][s] for k in middle for s in range(n)))],
                 refute=[(f"the gap at p = {top} is at least the gap without dropout for every seed ({r})",
                          all(g[top][s] >= g[none][s] for s in range(n)))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    ps = [float(k) for k in m["gap"]]
    curves(axes[0][0], {"train accuracy": [mean(v) for v in m["train_accuracy"].values()],
                        "val accuracy": [mean(v) for v in m["val_accuracy"].values()],
                        "gap (train - val)": [mean(v) for v in m["gap"].values()]},
           x=ps, xlabel="dropout p", ylabel="accuracy (mean of seeds)",
           title=f"{result['config']['data']}, MLP {result['config']['depth']} x {result['config']['width']}")
    curves(axes[0][1], {f"p = {k}": v[0] for k, v in m["val_accuracy_curve"].items()},
           x=list(range(1, result["config"]["epochs"] + 1)), xlabel="epoch", ylabel="val accuracy", title="seed 0")
    return [save(fig, directory, "dropout.png")]


def summary(m: dict) -> str:
    return ", ".join(f"p {k}: gap {mean(v):.3f} val acc {mean(m['val_accuracy'][k]):.3f}" for k, v in m["gap"].items())


EXPERIMENT = Experiment(
    name="dropout",
    claim="dropout narrows the gap between training and validation accuracy",
    source="notes on regularisation: dropout, why it prevents overfitting (seeds 000, 001, 004); Srivastava et al. "
           "2014",
    setup="trainwell.train on MNIST-1D (2000 rows, 1280 for training): MLP 3 x 128 ReLU with model.dropout p = 0, "
          "0.2, 0.5 after each hidden layer, Adam lr 1e-3, batch 64, 30 epochs (--quick: digits with 431 training "
          "rows, 20 epochs, one seed); gap = training accuracy - validation accuracy, both in evaluation mode at "
          "the end",
    criterion="confirmed if, for every seed, the gap at p = 0.5 is at most 0.75 x the gap without dropout and the "
              "gap at p = 0.2 is below the gap without dropout; refuted if the gap at p = 0.5 is at least the gap "
              "without dropout for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(data="digits", n_samples=None, test_fraction=0.7, epochs=20, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("gap",))
