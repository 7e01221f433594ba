"""Decaying the learning rate (step, exponential, cosine) ends at a lower loss than keeping it constant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainwell.config import resolve_config
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, curves, figure, save
from trainwell.runs import configured_data

SCHEDULES = ("constant", "step", "exponential", "cosine")
DECAYS = SCHEDULES[1:]


@dataclass(frozen=True)
class Settings:
    epochs: int = 30
    lr: float = 0.05
    batch_size: int = 32
    depth: int = 2
    width: int = 64
    final_factor: float = 0.01   # step and exponential end at this share of the rate (cosine ends at 0)
    margin: float = 0.95         # a decay must end at <= margin x the constant rate's loss
    seeds: int = 3


def schedule(cfg: Settings, name: str) -> dict:
    """The config's schedule section: step decays twice by 0.1, exponential by final_factor over the run."""
    if name == "constant":
        return {"name": "none"}
    if name == "step":
        return {"name": "step", "step_size": max(cfg.epochs // 3, 1), "gamma": 0.1}
    if name == "exponential":
        return {"name": "exponential", "gamma": cfg.final_factor ** (1 / cfg.epochs)}
    return {"name": "cosine", "min_lr": 0.0}


def config(cfg: Settings, name: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": "digits", "batch_size": cfg.batch_size},
                       model={"depth": cfg.depth, "width": cfg.width}, optim={"name": "momentum", "lr": cfg.lr},
                       schedule=schedule(cfg, name), train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = configured_data(resolve_config(config(cfg, "constant", 0)).data)  # loaded once, the same for every run
    final, val, curve, lrs = ({s: [] for s in SCHEDULES} for _ in range(4))
    for name in SCHEDULES:
        for seed in seeds:
            r = quiet_train(config(cfg, name, seed), data=data)
            final[name].append(r.history[-1]["train_loss"])
            val[name].append(r.history[-1]["val_loss"])
            curve[name].append([h["train_loss"] for h in r.history])
            lrs[name] = [h["lr"] for h in r.history]
    return {"final_loss": final, "final_val_loss": val, "train_loss_curve": curve, "lr_curve": lrs,
            "configs": {s: config(cfg, s, seeds[0]) for s in SCHEDULES}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    f = m["final_loss"]
    n = len(f["constant"])
    checks = [(f"{d}'s final training loss <= {cfg.margin} x the constant rate's for every seed "
               f"({[round(v, 4) for v in f[d]]} vs {[round(v, 4) for v in f['constant']]})",
               all(f[d][s] <= cfg.margin * f["constant"][s] for s in range(n))) for d in DECAYS]
    lowest = all(f["constant"][s] < min(f[d][s] for d in DECAYS) for s in range(n))
    return judge(checks, refute=[("the constant rate ends lowest of all four for every seed", lowest)])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(3)
    epochs = list(range(1, len(m["lr_curve"]["constant"]) + 1))
    curves(axes[0][0], {s: c[0] for s, c in m["train_loss_curve"].items()}, x=epochs, xlabel="epoch",
           ylabel="training loss (seed 0)", log=True, title="training loss")
    curves(axes[0][1], m["lr_curve"], x=epochs, xlabel="epoch", ylabel="learning rate (end of epoch)",
           log=True, title="schedules")
    bars(axes[0][2], {s: mean(v) for s, v in m["final_loss"].items()}, ylabel="final training loss (mean)",
         log=True, title="final training loss")
    return [save(fig, directory, "schedules.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{s}: loss {mean(m['final_loss'][s]):.4f}" for s in SCHEDULES)


EXPERIMENT = Experiment(
    name="lr_schedules",
    claim="decaying the learning rate (step, exponential or cosine) ends at a lower loss than a constant rate",
    source="notes on learning-rate schedules (seed 001); Loshchilov & Hutter 2017 (cosine)",
    setup="trainwell.train with schedule.name none/step/exponential/cosine (stepped per epoch): MLP 2 x 64 "
          "(ReLU) on digits, SGD with momentum 0.9, lr 0.05, batch 32, 30 epochs; step: x0.1 every 10 epochs; "
          "exponential: gamma = 0.01^(1/30); cosine to 0; final loss = the last epoch's mean training loss",
    criterion="confirmed if, for every seed, each of step, exponential and cosine ends with a final training "
              "loss <= 0.95 x the constant rate's; refuted if the constant rate ends lowest of all four for "
              "every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=6, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("final_loss",))
