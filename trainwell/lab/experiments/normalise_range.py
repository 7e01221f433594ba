"""Standardise inputs to mean 0 and variance 1; the notes' scaling to [0, 1] trains worse (the notes are wrong)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from trainwell.data import Split, load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save

SCALINGS = ("raw", "unit_range", "standardised")


@dataclass(frozen=True)
class Settings:
    epochs: int = 15
    lr: float = 0.05
    width: int = 32
    seeds: int = 3


def config(cfg: Settings, scaling: str, seed: int) -> dict:
    return base_config(seed=seed, data={"name": "breast_cancer", "batch_size": 32,
                                        "standardize": scaling == "standardised"},
                       model={"depth": 1, "width": cfg.width}, optim={"name": "sgd", "lr": cfg.lr},
                       train={"epochs": cfg.epochs})


def unit_range(data):
    """Each feature mapped to [0, 1] by the training split's minimum and maximum (the notes' recipe)."""
    lo, hi = data.train.x.min(0).values, data.train.x.max(0).values
    scale = (hi - lo).clamp_min(1e-12)
    f = lambda s: Split((s.x - lo) / scale, s.y)  # noqa: E731
    return replace(data, train=f(data.train), val=f(data.val), test=f(data.test))


def run(cfg: Settings, seeds: list[int]) -> dict:
    raw = load_data("breast_cancer")
    loss, curve, acc = ({s: [] for s in SCALINGS} for _ in range(3))
    for scaling in SCALINGS:
        for seed in seeds:
            r = quiet_train(config(cfg, scaling, seed), data=unit_range(raw) if scaling == "unit_range" else raw)
            loss[scaling].append(r.history[-1]["train_loss"])
            curve[scaling].append([h["train_loss"] for h in r.history])
            acc[scaling].append(r.metrics["test"]["accuracy"])
    return {"train_loss": loss, "train_loss_curve": curve, "test_accuracy": acc,
            "feature_range_raw": [raw.train.x.min().item(), raw.train.x.max().item()]}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    t = m["train_loss"]
    pairs = list(zip(t["standardised"], t["unit_range"]))
    verdict_, reason = judge([(f"standardised final training loss <= 0.9 x [0, 1]'s for every seed "
                               f"({[(round(a, 4), round(b, 4)) for a, b in pairs]})",
                               all(a <= 0.9 * b for a, b in pairs))],
                             refute=[("[0, 1] ends lower than standardised for every seed",
                                      all(b < a for a, b in pairs))])
    if verdict_ == "confirmed":
        reason += " - so the notes' advice to scale to [0, 1] is the weaker one"
    return verdict_, reason


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1)
    curves(axes[0][0], {s: c[0] for s, c in m["train_loss_curve"].items()}, log=True, xlabel="epoch - 1",
           ylabel="training loss", title="breast cancer, MLP 1 x 32, SGD lr 0.05")
    return [save(fig, directory, "scaling.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{s}: train loss {mean(m['train_loss'][s]):.4f} test acc {mean(m['test_accuracy'][s]):.3f}"
                     for s in SCALINGS)


EXPERIMENT = Experiment(
    name="normalise_range",
    claim="standardise inputs to mean 0 / variance 1, not to [0, 1] as the notes write",
    source="notes on data preprocessing (seed 001: the notes' [0, 1] is wrong); LeCun et al. 1998, Efficient BackProp",
    setup="trainwell.train on breast cancer (30 features of very different scales), MLP 1 x 32, plain SGD lr 0.05, "
          "batch 32: raw features (data.standardize=false), each feature mapped to [0, 1] by the training split's "
          "min and max, and data.standardize=true",
    criterion="confirmed (the notes' advice is the weaker one) if the standardised run's final training loss is at "
              "most 0.9 x the [0, 1] run's for every seed; refuted if [0, 1] ends lower for every seed; otherwise "
              "inconclusive",
    config=Settings(), quick=Settings(epochs=5, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("train_loss",))
