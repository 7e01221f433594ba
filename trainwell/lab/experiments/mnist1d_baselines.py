"""Logistic, MLP, CNN and GRU on MNIST-1D and on its shuffled variant: the CNN's and GRU's edge comes from
the order of the positions, so it goes when the positions are shuffled; the MLP and the logistic model do not
care (Greydanus 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import figure, save

MODELS = {"logistic": (0, 1), "mlp": (2, 128), "cnn": (3, 32), "gru": (1, 48)}  # name -> (depth, width)
VARIANTS = ("original", "shuffled")


@dataclass(frozen=True)
class Settings:
    n_samples: int = 2000
    epochs: int = 15
    lr: float = 0.003
    batch_size: int = 64
    drop: float = 0.1            # the CNN and GRU must lose more than this on shuffled positions
    keep: float = 0.05           # the MLP and logistic must change by less than this
    edge: float = 0.05           # the CNN and GRU must beat the MLP on the original by more than this
    seeds: int = 1


def config(cfg: Settings, model: str, variant: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it; data.options.shuffle_seq is the variant)."""
    depth, width = MODELS[model]
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": cfg.batch_size,
                                        "options": {"shuffle_seq": variant == "shuffled"}},
                       model={"name": model, "depth": depth, "width": width},
                       optim={"name": "adam", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    acc = {m: {v: [] for v in VARIANTS} for m in MODELS}
    train_acc = {m: {v: [] for v in VARIANTS} for m in MODELS}
    for variant in VARIANTS:
        # mnist1d's make_dataset (trainwell's data layer): the same rows, positions permuted for "shuffled"
        data = load_data("mnist1d", n_samples=cfg.n_samples, shuffle_seq=variant == "shuffled")
        for model in MODELS:
            for seed in seeds:
                r = quiet_train(config(cfg, model, variant, seed), data=data)
                acc[model][variant].append(r.metrics["test"]["accuracy"])
                train_acc[model][variant].append(r.metrics["train"]["accuracy"])
    return {"test_accuracy": acc, "train_accuracy": train_acc,
            "configs": {f"{m}_{v}": config(cfg, m, v, 0) for m in MODELS for v in VARIANTS}}


def drops(m: dict, model: str) -> list[float]:
    a = m["test_accuracy"][model]
    return [o - s for o, s in zip(a["original"], a["shuffled"])]


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    a = m["test_accuracy"]
    d = {k: [round(v, 3) for v in drops(m, k)] for k in MODELS}
    n = len(a["mlp"]["original"])
    edge = {k: [round(a[k]["original"][s] - a["mlp"]["original"][s], 3) for s in range(n)] for k in ("cnn", "gru")}
    return judge([(f"on the original the CNN and GRU beat the MLP by > {cfg.edge} for every seed ({edge})",
                   all(v > cfg.edge for k in edge for v in edge[k])),
                  (f"shuffling costs the CNN and GRU > {cfg.drop} of test accuracy for every seed "
                   f"(cnn {d['cnn']}, gru {d['gru']})", all(v > cfg.drop for k in ("cnn", "gru") for v in d[k])),
                  (f"shuffling changes the MLP's and logistic's test accuracy by < {cfg.keep} for every seed "
                   f"(mlp {d['mlp']}, logistic {d['logistic']})",
                   all(abs(v) < cfg.keep for k in ("mlp", "logistic") for v in d[k]))],
                 refute=[(f"shuffling costs the CNN and GRU no more than the MLP for every seed ({d})",
                          all(d[k][s] <= d["mlp"][s] for k in ("cnn", "gru") for s in range(n)))])


def plot(result: dict, directory: Path) -> list[str]:
    a = result["measurements"]["test_accuracy"]
    fig, axes = figure(1, width=6)
    ax = axes[0][0]
    for i, v in enumerate(VARIANTS):
        ax.bar([j + 0.4 * i for j in range(len(MODELS))], [mean(a[k][v]) for k in MODELS], width=0.4, label=v)
    ax.set_xticks([j + 0.2 for j in range(len(MODELS))], list(MODELS))
    ax.set(ylabel="test accuracy", title="MNIST-1D: original vs shuffled positions", ylim=(0, 1))
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return [save(fig, directory, "mnist1d_baselines.png")]


def summary(m: dict) -> str:
    a = m["test_accuracy"]
    return ", ".join(f"{k}: {mean(a[k]['original']):.3f} -> shuffled {mean(a[k]['shuffled']):.3f}" for k in MODELS)


EXPERIMENT = Experiment(
    name="mnist1d_baselines",
    claim="on MNIST-1D the CNN and GRU beat the MLP and logistic regression; with the positions shuffled they lose "
          "their edge, and the MLP and logistic regression do not change",
    source="notes on architectures and inductive biases (the MNIST-1D baselines); Greydanus 2020",
    setup="trainwell.train on MNIST-1D (2000 rows, mnist1d's make_dataset) and on its shuffled variant "
          "(data.options.shuffle_seq: the same rows, the 40 positions in one fixed random order): logistic "
          "regression, MLP 2 x 128, CNN 3 x 32 (kernel 5, stride 2), GRU 1 x 48; Adam lr 0.003, batch 64, "
          "15 epochs, no dropout; test accuracy on mnist1d's own test split",
    criterion="confirmed if, for every seed, the CNN and the GRU beat the MLP on the original by more than 0.05, "
              "shuffling costs the CNN and the GRU more than 0.1 of test accuracy each, and changes the MLP's and "
              "the logistic model's by less than 0.05; refuted if shuffling costs the CNN and the GRU no more than "
              "it costs the MLP for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(n_samples=500, epochs=3),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("test_accuracy",))
