"""Rebalancing a heavily imbalanced training split (sampling, weighting, ensembles of under-samples, one-class
learning) raises the minority class's recall and, in most cases, the balanced accuracy."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, quiet_train
from trainwell.lab.plotting import figure, save
from trainwell.runs.one_class import train_one_class
from trainwell.selection import balance_cascade, train_ensemble

SAMPLING = {"ros": "random_over", "rus": "random_under", "smote": "smote", "nearmiss": "nearmiss"}
METHODS = ("none", "ros", "rus", "smote", "nearmiss", "class_weights", "easy_ensemble", "balance_cascade",
           "one_class")


@dataclass(frozen=True)
class Settings:
    datasets: tuple[str, ...] = ("moons", "circles")
    n_samples: int = 4000
    ratio: float = 0.05          # data.imbalance_ratio: the minority keeps 5% of its rows, in every split
    epochs: int = 30
    width: int = 32
    lr: float = 0.01
    members: int = 4             # EasyEnsemble members, BalanceCascade rounds
    one_class_epochs: int = 50
    gain: float = 0.02           # "beats none" on balanced accuracy: by more than this
    most: int = 5                # of the 8 methods, at least this many must beat none on balanced accuracy
    recall_most: int = 6         # ... and at least this many must raise the minority recall
    seeds: int = 1


def config(cfg: Settings, dataset: str, method: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train``, ``ensemble`` or ``one-class`` reruns it)."""
    data = {"name": dataset, "n_samples": cfg.n_samples, "imbalance_ratio": cfg.ratio, "batch_size": 64}
    if method in SAMPLING:
        data["imbalance"] = {"method": SAMPLING[method]}
    extra = {"loss": "weighted_cross_entropy", "loss_options": {"weights": "balanced"}} \
        if method == "class_weights" else {}
    return base_config(seed=seed, data=data, model={"depth": 2, "width": cfg.width},
                       optim={"name": "adam", "lr": cfg.lr},
                       train={"epochs": cfg.epochs, "threads": 1},  # ensemble workers take all cores otherwise
                       one_class={"bottleneck": 1, "width": cfg.width, "epochs": cfg.one_class_epochs}, **extra)


def scores(cfg: Settings, dataset: str, method: str, seed: int, tmp: str) -> dict:
    """Test metrics (per_class_recall, balanced_accuracy) of one method."""
    c = config(cfg, dataset, method, seed)
    if method == "easy_ensemble":
        return train_ensemble(c, members=cfg.members, balance=True, out=f"{tmp}/{dataset}-{method}-{seed}")["test"]
    if method == "balance_cascade":
        return balance_cascade(c, rounds=cfg.members, out=f"{tmp}/{dataset}-{method}-{seed}")["test"]
    if method == "one_class":  # the majority is learnt as normal: class 0 normal, 1 outlier (the minority)
        return train_one_class(c, out=f"{tmp}/{dataset}-{method}-{seed}")["test"]
    return quiet_train(c).metrics["test"]


def run(cfg: Settings, seeds: list[int]) -> dict:
    bal = {d: {m: [] for m in METHODS} for d in cfg.datasets}
    rec = {d: {m: [] for m in METHODS} for d in cfg.datasets}
    minority = {}
    with tempfile.TemporaryDirectory(prefix="trainwell-lab-") as tmp:
        for dataset in cfg.datasets:
            counts = load_data(dataset, n_samples=cfg.n_samples, imbalance_ratio=cfg.ratio).class_counts()
            minority[dataset] = {"class": int(counts.argmin()), "train_counts": counts.tolist()}
            for method in METHODS:
                for seed in seeds:
                    s = scores(cfg, dataset, method, seed, tmp)
                    k = 1 if method == "one_class" else minority[dataset]["class"]
                    bal[dataset][method].append(s["balanced_accuracy"])
                    rec[dataset][method].append(s["per_class_recall"][k])
    return {"balanced_accuracy": bal, "minority_recall": rec, "minority": minority,
            "configs": {f"{d}_{m}": config(cfg, d, m, 0) for d in cfg.datasets for m in METHODS},
            "note": "configs of easy_ensemble: trainwell ensemble --balance; balance_cascade: trainwell ensemble "
                    "--method cascade; one_class: trainwell one-class"}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    checks, against = [], []
    others = METHODS[1:]
    for d in m["balanced_accuracy"]:
        b, r = m["balanced_accuracy"][d], m["minority_recall"][d]
        n_seeds = len(b["none"])
        for s in range(n_seeds):
            beat = [k for k in others if b[k][s] > b["none"][s] + cfg.gain]
            raised = [k for k in others if r[k][s] > r["none"][s]]
            tag = f"{d}, seed {s}"
            checks.append((f"{tag}: >= {cfg.most} of 8 methods beat none's balanced accuracy "
                           f"{b['none'][s]:.3f} by > {cfg.gain} ({len(beat)}: {beat})", len(beat) >= cfg.most))
            checks.append((f"{tag}: >= {cfg.recall_most} of 8 raise the minority recall above none's "
                           f"{r['none'][s]:.3f} ({len(raised)}: {raised})", len(raised) >= cfg.recall_most))
            against.append(len([k for k in others if b[k][s] > b["none"][s]]) < 3)
    return judge(checks, refute=[("on every data set and seed fewer than 3 of 8 methods beat none's balanced "
                                  "accuracy at all", all(against))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    sets = list(m["balanced_accuracy"])
    fig, axes = figure(len(sets), width=6)
    for ax, d in zip(axes[0], sets):
        x = np.arange(len(METHODS))
        ax.bar(x - 0.2, [np.mean(m["balanced_accuracy"][d][k]) for k in METHODS], width=0.4, label="balanced accuracy")
        ax.bar(x + 0.2, [np.mean(m["minority_recall"][d][k]) for k in METHODS], width=0.4, label="minority recall")
        ax.set_xticks(x, METHODS, rotation=35, ha="right", fontsize=8)
        ax.set(ylim=(0, 1.05), title=f"{d}, minority kept at {result['config']['ratio']:g}")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    return [save(fig, directory, "class_imbalance.png")]


def summary(m: dict) -> str:
    return "; ".join(f"{d}: " + ", ".join(f"{k} {np.mean(m['balanced_accuracy'][d][k]):.2f}/"
                                          f"{np.mean(m['minority_recall'][d][k]):.2f}" for k in METHODS)
                     for d in m["balanced_accuracy"]) + " (balanced accuracy / minority recall)"


EXPERIMENT = Experiment(
    name="class_imbalance",
    claim="rebalancing an imbalanced training split (ROS, RUS, SMOTE, NearMiss, class weights, EasyEnsemble, "
          "BalanceCascade, one-class) raises the minority's recall and in most cases the balanced accuracy",
    source="notes on imbalanced data: sampling, synthesis, weighting, one-class (seed 003); Chawla et al. 2002; "
           "Liu et al. 2009",
    setup="moons and circles (4000 rows, the minority class kept at 5% of its rows in every split: "
          "data.imbalance_ratio 0.05), MLP 2 x 32, Adam lr 0.01, batch 64, 30 epochs via trainwell.train: none, "
          "data.imbalance.method random_over / random_under / smote / nearmiss, loss weighted_cross_entropy "
          "(balanced); trainwell.selection.train_ensemble(balance=True) with 4 members (EasyEnsemble), "
          "balance_cascade with 4 rounds; trainwell one-class (autoencoder, bottleneck 1, 50 epochs) on the "
          "majority; balanced accuracy and the minority's recall on the test split",
    criterion="confirmed if, on every data set and seed, at least 5 of the 8 methods beat none's balanced accuracy "
              "by more than 0.02 and at least 6 of the 8 raise the minority's recall above none's; refuted if, on "
              "every data set and seed, fewer than 3 of the 8 beat none's balanced accuracy at all; otherwise "
              "inconclusive",
    config=Settings(), quick=Settings(datasets=("moons",), n_samples=2000, epochs=8, members=2, one_class_epochs=20),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("balanced_accuracy", "minority_recall"))
