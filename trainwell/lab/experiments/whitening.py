"""Whitening, the ideal that batch norm approximates: ZCA and PCA whitening decorrelate the features (PCA also
rotates them off their axes, ZCA keeps each near its own), batch norm only standardises them; whitened inputs
train a linear model faster."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from trainwell.data import Split, load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, figure, save
from trainwell.nn.norms import BatchNorm1d, Whiten, whitening_matrix

METHODS = ("standardise", "zca", "pca")


@dataclass(frozen=True)
class Settings:
    eps: float = 1e-5
    rates: tuple[float, ...] = (0.01, 0.1, 1.0)   # plain SGD; each method judged at its best rate
    epochs: int = 20
    batch_size: int = 32
    decorrelated: float = 0.01   # mean |off-diagonal covariance| below this: decorrelated
    correlated: float = 0.1      # and above this: the correlations stay
    unit: float = 0.05           # mean |variance - 1| below this: unit variances
    rotated: float = 0.2         # PCA's alignment with the input axes at least this far below ZCA's
    faster: float = 0.9          # whitened training loss <= this x the standardised one
    seeds: int = 3


def config(cfg: Settings, lr: float, seed: int, standardize: bool = True) -> dict:
    """The logistic regression's trainwell config (the standardised run's is rerun by ``trainwell train``)."""
    return base_config(seed=seed, data={"name": "breast_cancer", "batch_size": cfg.batch_size,
                                        "standardize": standardize},
                       model={"name": "logistic"}, optim={"name": "sgd", "lr": lr}, train={"epochs": cfg.epochs})


def covariance_stats(y: torch.Tensor, z: torch.Tensor) -> dict:
    """Of features ``y`` (rows, features): mean |off-diagonal covariance|, mean |variance - 1|, and the mean
    |correlation| of each feature y_i with the standardised input z_i (1: the axes are kept)."""
    yc = y - y.mean(0)
    cov = yc.T @ yc / len(y)
    off = cov - torch.diag(cov.diagonal())
    d = len(cov)
    ys, zs = yc / yc.std(0, unbiased=False), (z - z.mean(0)) / z.std(0, unbiased=False)
    return {"offdiag_cov": (off.abs().sum() / (d * d - d)).item(),
            "diag_error": (cov.diagonal() - 1).abs().mean().item(),
            "axis_alignment": (ys * zs).mean(0).abs().mean().item()}


def number(x: float | str) -> float:
    """A stored loss as a float; a NaN (a diverged run) counts as an infinite loss."""
    v = float(x)
    return math.inf if math.isnan(v) else v


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data("breast_cancer")
    std = lambda s: (s.x.double() - data.mean.double()) / data.std.double()  # noqa: E731  trainwell's standardisation
    z = std(data.train)  # (rows, 30)
    zc = z - z.mean(0)
    cov = zc.T @ zc / len(z)
    stats, transformed = {}, {}
    for method in METHODS:
        w = whitening_matrix(cov, method, eps=cfg.eps)
        f = lambda s: Split(((std(s) - z.mean(0)) @ w.T).float(), s.y)  # noqa: E731
        transformed[method] = replace(data, train=f(data.train), val=f(data.val), test=f(data.test))
        stats[method] = covariance_stats(transformed[method].train.x.double(), z)
    with torch.no_grad():  # the library's layers on the whole training split as one batch
        layers = {"batch_norm_layer": BatchNorm1d(z.shape[1]).double().train()(z),
                  "whiten_layer": Whiten(z.shape[1], group_size=z.shape[1], eps=cfg.eps).double().train()(z)}
    stats |= {name: covariance_stats(y, z) for name, y in layers.items()}
    loss: dict = {m: {f"{lr:g}": [] for lr in cfg.rates} for m in METHODS}
    acc: dict = {m: {f"{lr:g}": [] for lr in cfg.rates} for m in METHODS}
    for method in METHODS:
        for lr in cfg.rates:
            for seed in seeds:
                if method == "standardise":  # trainwell's own standardisation, as the stored config does it
                    r = quiet_train(config(cfg, lr, seed), data=data)
                else:
                    r = quiet_train(config(cfg, lr, seed, standardize=False), data=transformed[method])
                loss[method][f"{lr:g}"].append(r.metrics["train"]["loss"])
                acc[method][f"{lr:g}"].append(r.metrics["val"]["accuracy"])
    best = {m: [min(number(loss[m][k][s]) for k in loss[m]) for s in range(len(seeds))] for m in METHODS}
    return {"offdiag_cov": {k: v["offdiag_cov"] for k, v in stats.items()},
            "diag_error": {k: v["diag_error"] for k, v in stats.items()},
            "axis_alignment": {k: v["axis_alignment"] for k, v in stats.items()},
            "train_loss": loss, "best_train_loss": best, "val_accuracy": acc,
            "configs": {f"standardise_lr{lr:g}": config(cfg, lr, 0) for lr in cfg.rates},
            "note": "zca and pca runs use these configs with data.standardize=false on the features whitened by "
                    "trainwell.nn.norms.whitening_matrix (trainwell train has no whitening step)"}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    off, diag, align = m["offdiag_cov"], m["diag_error"], m["axis_alignment"]
    best = {k: [number(x) for x in v] for k, v in m["best_train_loss"].items()}
    r = lambda d: {k: round(v, 4) for k, v in d.items()}  # noqa: E731
    losses = {k: [round(x, 4) for x in v] for k, v in best.items()}
    n = len(best["standardise"])
    return judge(
        [(f"ZCA, PCA and the whitening layer decorrelate: mean |off-diagonal covariance| < {cfg.decorrelated} "
          f"({r(off)})", all(off[k] < cfg.decorrelated for k in ("zca", "pca", "whiten_layer"))),
         (f"standardising and the BN layer keep the correlations: mean |off-diagonal| > {cfg.correlated}",
          all(off[k] > cfg.correlated for k in ("standardise", "batch_norm_layer"))),
         (f"every method gives unit variances: mean |variance - 1| < {cfg.unit} ({r(diag)})",
          all(v < cfg.unit for v in diag.values())),
         (f"PCA rotates the axes, ZCA keeps them: PCA's mean |corr(y_i, x_i)| is >= {cfg.rotated} below ZCA's "
          f"({r(align)})", align["pca"] <= align["zca"] - cfg.rotated),
         (f"whitened inputs train faster: ZCA's and PCA's best training loss <= {cfg.faster} x the standardised one "
          f"for every seed ({losses})",
          all(best[k][s] <= cfg.faster * best["standardise"][s] for k in ("zca", "pca") for s in range(n)))],
        refute=[("the standardised inputs end below both ZCA and PCA for every seed",
                 all(best["standardise"][s] < min(best["zca"][s], best["pca"][s]) for s in range(n))),
                ("PCA keeps the input axes at least as well as ZCA", align["pca"] >= align["zca"])])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(3)
    bars(axes[0][0], m["offdiag_cov"], ylabel="mean |off-diagonal covariance|", title="correlation left", log=True)
    bars(axes[0][1], m["axis_alignment"], ylabel="mean |corr(y_i, x_i)|", title="features kept on their axes")
    bars(axes[0][2], {k: mean([number(x) for x in v]) for k, v in m["best_train_loss"].items()},
         ylabel="training loss (best rate)",
         title="logistic regression, breast cancer", log=True)
    return [save(fig, directory, "whitening.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{k}: offdiag {m['offdiag_cov'][k]:.4f} align {m['axis_alignment'][k]:.2f} train loss "
                     f"{mean([number(x) for x in m['best_train_loss'][k]]):.4f}" for k in METHODS)


EXPERIMENT = Experiment(
    name="whitening",
    claim="ZCA and PCA whitening decorrelate the features (PCA rotates them off their axes, ZCA keeps them near); "
          "batch norm only standardises; whitened inputs train a linear model faster",
    source="notes on normalisation: the ideal method, whitening (PCA, then unit variances), and BN as its cheap "
           "compromise (seeds 000, 001, 004); LeCun et al. 1998; Kessy et al. 2018",
    setup="breast cancer (30 correlated features, 364 training rows) standardised by trainwell, then whitened "
          "with trainwell.nn.norms.whitening_matrix (ZCA or PCA, eps 1e-5) from the training split's covariance; "
          "trainwell's BatchNorm1d and Whiten layers on the same rows as one batch; covariance of each result on "
          "the training split; then trainwell.train of a logistic regression on each input, plain SGD at lr 0.01, "
          "0.1 and 1, batch 32, 20 epochs (--quick: 5 epochs, one seed), judged at each input's best rate by the "
          "training loss at the end",
    criterion="confirmed if ZCA, PCA and the Whiten layer leave a mean |off-diagonal covariance| < 0.01 while "
              "standardising and the BN layer leave > 0.1; every method's mean |variance - 1| is < 0.05; PCA's "
              "mean |corr(y_i, x_i)| is at least 0.2 below ZCA's; and, for every seed, ZCA's and PCA's best "
              "training loss is <= 0.9 x the standardised input's; refuted if the standardised input ends below "
              "both ZCA and PCA for every seed, or PCA keeps the axes at least as well as ZCA; otherwise "
              "inconclusive",
    config=Settings(), quick=Settings(epochs=5, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("offdiag_cov", "train_loss"))
