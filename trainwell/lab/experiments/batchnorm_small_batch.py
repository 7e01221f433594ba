"""Batch norm fails at batches of 2-4 rows; layer norm and group norm, whose statistics are per sample, do not
(Wu & He 2018, Fig. 1)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save

NORMS = ("batch", "layer", "group")
SMALL = (2, 4)  # the batch sizes the claim is about (those present in Settings.batch_sizes are judged)


@dataclass(frozen=True)
class Settings:
    batch_sizes: tuple[int, ...] = (2, 4, 32)   # the last is the reference
    base_lr: float = 0.05        # SGD with momentum 0.9 at batch 32; lr = base_lr * batch / 32 (Wu & He's rule)
    depth: int = 3
    width: int = 64
    groups: int = 8              # group norm: 8 groups of 8 features
    epochs: int = 3
    val_fraction: float = 0.22   # 1120 training rows: no batch of one row, which BN refuses
    test_fraction: float = 0.2
    bn_drop_2: float = 0.05      # BN at batch 2 at least this far below its reference accuracy
    bn_drop_4: float = 0.02      # BN at batch 4 at least this far below
    per_sample_drop: float = 0.02  # LN and GN at batch 2 and 4 at most this far below their reference
    seeds: int = 2


def config(cfg: Settings, norm: str, batch: int, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    model = {"name": "mlp", "depth": cfg.depth, "width": cfg.width, "activation": "relu", "init": "he_normal",
             "norm": norm}
    if norm == "group":
        model["norm_options"] = {"groups": cfg.groups}
    return base_config(seed=seed, data={"name": "digits", "batch_size": batch, "val_fraction": cfg.val_fraction,
                                        "test_fraction": cfg.test_fraction},
                       model=model, optim={"name": "momentum", "lr": cfg.base_lr * batch / 32},
                       train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data("digits", val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction)
    acc: dict = {n: {str(b): [] for b in cfg.batch_sizes} for n in NORMS}
    train_acc: dict = {n: {str(b): [] for b in cfg.batch_sizes} for n in NORMS}
    for norm in NORMS:
        for batch in cfg.batch_sizes:
            for seed in seeds:
                r = quiet_train(config(cfg, norm, batch, seed), data=data)
                acc[norm][str(batch)].append(r.metrics["val"]["accuracy"])
                train_acc[norm][str(batch)].append(r.metrics["train"]["accuracy"])
    return {"val_accuracy": acc, "train_accuracy": train_acc, "training_rows": len(data.train),
            "configs": {f"{n}_b{b}": config(cfg, n, b, 0) for n in NORMS for b in cfg.batch_sizes}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    acc = m["val_accuracy"]
    ref = str(cfg.batch_sizes[-1])
    small = [str(b) for b in SMALL if b in cfg.batch_sizes]
    n = len(acc["batch"][ref])
    drop = {norm: {b: [round(acc[norm][ref][s] - acc[norm][b][s], 3) for s in range(n)] for b in small}
            for norm in NORMS}
    need = {"2": cfg.bn_drop_2, "4": cfg.bn_drop_4}
    checks = [(f"BN at batch {b} is >= {need[b]} below BN at batch {ref} for every seed (drops {drop['batch'][b]})",
               all(d >= need[b] for d in drop["batch"][b])) for b in small]
    checks += [(f"{norm} norm at batch {b} is no more than {cfg.per_sample_drop} below its batch-{ref} accuracy "
                f"for every seed (drops {drop[norm][b]})", all(d <= cfg.per_sample_drop for d in drop[norm][b]))
               for norm in ("layer", "group") for b in small]
    return judge(checks, refute=[(f"BN does not fail at batch 2: within 0.02 of its batch-{ref} accuracy for every "
                                  f"seed (drops {drop['batch'].get('2')})",
                                  "2" in small and all(d < 0.02 for d in drop["batch"]["2"]))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1)
    sizes = [int(b) for b in m["val_accuracy"]["batch"]]
    curves(axes[0][0], {f"{n} norm": [mean(v) for v in m["val_accuracy"][n].values()] for n in NORMS}, x=sizes,
           xlabel="batch size (lr scaled by batch / 32)", ylabel="val accuracy",
           title=f"digits, MLP {result['config']['depth']} x {result['config']['width']} (mean of seeds)")
    axes[0][0].set_xscale("log", base=2)
    return [save(fig, directory, "small_batch.png")]


def summary(m: dict) -> str:
    return "; ".join(f"{n}: " + ", ".join(f"b{b} {mean(v):.3f}" for b, v in m["val_accuracy"][n].items())
                     for n in NORMS)


EXPERIMENT = Experiment(
    name="batchnorm_small_batch",
    claim="batch norm fails at batches of 2-4 rows; layer norm and group norm do not",
    source="notes on normalisation: when BN applies, large batches (seeds 001, 004); Wu & He 2018, Group "
           "Normalization, Fig. 1",
    setup="trainwell.train on digits (1120 training rows): MLP 3 x 64 ReLU, He init, model.norm batch, layer or "
          "group (8 groups of 8), batch 2, 4 and 32 with SGD momentum 0.9 at lr 0.05 x batch / 32, 3 epochs "
          "(--quick: batch 2 and 32, 2 epochs, 420 training rows, one seed); val accuracy at the end",
    criterion="confirmed if, for every seed, BN's val accuracy at batch 2 is at least 0.05 and at batch 4 at least "
              "0.02 below its accuracy at batch 32, while layer norm's and group norm's at batch 2 and 4 are no "
              "more than 0.02 below their own batch-32 accuracy; refuted if BN at batch 2 is within 0.02 of its "
              "batch-32 accuracy (or above it) for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(batch_sizes=(2, 32), epochs=2, test_fraction=0.7, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("val_accuracy",))
