"""Large batches: multiply the rate by k when the batch grows k times, and warm it up (Goyal et al. 2017)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from trainwell.config import resolve_config
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save
from trainwell.runs import configured_data

SETUPS = ("small", "large_same_lr", "large_scaled", "large_scaled_warmup")


@dataclass(frozen=True)
class Settings:
    small_batch: int = 32
    large_batch: int = 512        # k = 16
    lr: float = 0.01              # the small batch's rate (SGD with momentum 0.9)
    warmup_epochs: int = 5
    epochs: int = 30
    depth: int = 2
    width: int = 64
    target: float = 0.9           # validation accuracy
    tolerance: float = 0.02       # "matches": within this of the small batch's accuracy
    seeds: int = 3


def config(cfg: Settings, setup: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    k = cfg.large_batch / cfg.small_batch
    bs = cfg.small_batch if setup == "small" else cfg.large_batch
    lr = cfg.lr * k if setup.startswith("large_scaled") else cfg.lr
    warmup = cfg.warmup_epochs if setup == "large_scaled_warmup" else 0
    return base_config(seed=seed, data={"name": "digits", "batch_size": bs},
                       model={"depth": cfg.depth, "width": cfg.width}, optim={"name": "momentum", "lr": lr},
                       schedule={"name": "none", "warmup_epochs": warmup}, train={"epochs": cfg.epochs})


def reached(curve: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose validation accuracy is >= target, None if none is."""
    return next((i for i, a in enumerate(curve, 1) if a >= target), None)


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = configured_data(resolve_config(config(cfg, "small", 0)).data)  # loaded once
    final, epochs, acc_curve, loss_curve, lrs = ({s: [] for s in SETUPS} for _ in range(5))
    for setup in SETUPS:
        for seed in seeds:
            h = quiet_train(config(cfg, setup, seed), data=data).history
            acc = [x["val_accuracy"] for x in h]
            final[setup].append(acc[-1])
            epochs[setup].append(reached(acc, cfg.target))
            acc_curve[setup].append(acc)
            loss_curve[setup].append([x["train_loss"] for x in h])
            lrs[setup] = [x["lr"] for x in h]
    return {"final_accuracy": final, "epochs_to_target": epochs, "val_accuracy_curve": acc_curve,
            "train_loss_curve": loss_curve, "lr_curve": lrs, "k": cfg.large_batch / cfg.small_batch,
            "configs": {s: config(cfg, s, seeds[0]) for s in SETUPS}}


def inf(x: int | None) -> float:
    return math.inf if x is None else x


def num(x: float | str) -> float:
    """An accuracy; NaN (stored as a string) counts as 0."""
    x = float(x)
    return x if math.isfinite(x) else 0.0


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    f = {s: [num(v) for v in vs] for s, vs in m["final_accuracy"].items()}
    e, tol = m["epochs_to_target"], cfg.tolerance
    n = len(f["small"])
    seeds = range(n)
    return judge(
        [(f"scaled rate with warmup ends within {tol} of the small batch's accuracy for every seed "
          f"({f['large_scaled_warmup']} vs {f['small']})",
          all(f["large_scaled_warmup"][s] >= f["small"][s] - tol for s in seeds)),
         (f"the large batch at the small batch's rate reaches {cfg.target} later than with the scaled rate and "
          f"warmup for every seed (epochs {e['large_same_lr']} vs {e['large_scaled_warmup']}; none = not reached)",
          all(inf(e["large_same_lr"][s]) > inf(e["large_scaled_warmup"][s]) for s in seeds)),
         (f"without warmup the scaled rate ends more than {tol} below the warmed-up run for every seed "
          f"({f['large_scaled']} vs {f['large_scaled_warmup']})",
          all(f["large_scaled"][s] < f["large_scaled_warmup"][s] - tol for s in seeds))],
        refute=[(f"the scaled rate with warmup ends below the large batch at the small batch's rate for every seed "
                 f"({f['large_scaled_warmup']} vs {f['large_same_lr']})",
                 all(f["large_scaled_warmup"][s] < f["large_same_lr"][s] for s in seeds)),
                ("the scaled rate with warmup ends more than 0.1 below the small batch for every seed",
                 all(f["large_scaled_warmup"][s] < f["small"][s] - 0.1 for s in seeds))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(3)
    epochs = list(range(1, len(m["lr_curve"]["small"]) + 1))
    curves(axes[0][0], {s: c[0] for s, c in m["val_accuracy_curve"].items()}, x=epochs, xlabel="epoch",
           ylabel="validation accuracy (seed 0)", title="validation accuracy")
    axes[0][0].axhline(result["config"]["target"], color="grey", ls="--")
    curves(axes[0][1], {s: c[0] for s, c in m["train_loss_curve"].items()}, x=epochs, xlabel="epoch",
           ylabel="training loss (seed 0)", log=True, title="training loss")
    curves(axes[0][2], m["lr_curve"], x=epochs, xlabel="epoch", ylabel="learning rate (end of epoch)", log=True,
           title=f"rates (k = {m['k']:g})")
    return [save(fig, directory, "scaling_warmup.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{s}: acc {mean([num(v) for v in m['final_accuracy'][s]]):.3f} "
                     f"epochs {m['epochs_to_target'][s]}" for s in SETUPS)


EXPERIMENT = Experiment(
    name="lr_scaling_warmup",
    claim="when the batch grows k times, multiplying the rate by k (the linear scaling rule) with a warmup keeps "
          "the small batch's accuracy; the unscaled rate trains slower, and the scaled rate needs the warmup",
    source="notes on learning rates and warmup (seed 003); Goyal et al. 2017",
    setup="trainwell.train: MLP 2 x 64 (ReLU) on digits, SGD with momentum 0.9, 30 epochs; batch 32 at lr 0.01; "
          "batch 512 (k = 16) at lr 0.01, at lr 0.16, and at lr 0.16 after schedule.warmup_epochs 5 (linear, per "
          "epoch, from lr/6; Goyal et al. warm up per iteration); accuracy = the validation accuracy",
    criterion="confirmed if, for every seed, batch 512 with the scaled rate and warmup ends within 0.02 of batch "
              "32's final validation accuracy, batch 512 at the unscaled rate reaches 0.9 validation accuracy in "
              "more epochs than with the scaled rate and warmup (not reached = infinite), and the scaled rate "
              "without warmup ends more than 0.02 below the warmed-up run; refuted if the scaled, warmed-up run "
              "ends below the unscaled large batch for every seed, or more than 0.1 below batch 32 for every seed; "
              "otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=10, warmup_epochs=2, target=0.85, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("epochs_to_target", "final_accuracy"))
