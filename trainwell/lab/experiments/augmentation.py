"""On a small training set, augmentation narrows the gap between training and test accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, figure, save

AUGMENTS = {  # name -> data.augment
    "none": {},
    "noise": {"noise": 0.5},          # on the fly: Gaussian noise, 0.5 of each feature's std
    "shift": {"shift": 4},            # on the fly: the signal moved by up to 4 steps
    "crop": {"crop": 4},              # on the fly: padded by 4, cropped back at a random place
    "duplicate": {"duplicate": 4},    # before training: 4 noisy copies (0.1 std) of every row
    "gaussian": {"gaussian": 2},      # before training: 2 x the rows from per-class Gaussians
}


@dataclass(frozen=True)
class Settings:
    n_samples: int = 600         # small data: 384 training rows
    epochs: int = 50
    width: int = 128
    lr: float = 0.001
    margin: float = 0.05         # "narrows": a gap smaller than none's by more than this
    seeds: int = 2


def config(cfg: Settings, augment: str, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it)."""
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": 64,
                                        "augment": AUGMENTS[augment]},
                       model={"name": "mlp", "depth": 2, "width": cfg.width},
                       optim={"name": "adam", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def accuracy(model: torch.nn.Module, split) -> float:
    model.eval()
    with torch.no_grad():
        return (model(split.x).argmax(1) == split.y).float().mean().item()


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = load_data("mnist1d", n_samples=cfg.n_samples)  # generated once
    gap, train_acc, test_acc = ({a: [] for a in AUGMENTS} for _ in range(3))
    for aug in AUGMENTS:
        for seed in seeds:
            r = quiet_train(config(cfg, aug, seed), data=data)
            tr, te = accuracy(r.model, data.train), accuracy(r.model, data.test)  # the original training rows
            train_acc[aug].append(tr)
            test_acc[aug].append(te)
            gap[aug].append(tr - te)
    return {"gap": gap, "train_accuracy": train_acc, "test_accuracy": test_acc, "train_rows": len(data.train),
            "configs": {a: config(cfg, a, 0) for a in AUGMENTS}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    g = m["gap"]
    others = [a for a in AUGMENTS if a != "none"]
    gaps = {a: [round(v, 3) for v in g[a]] for a in AUGMENTS}
    return judge([(f"every augmentation's gap is below none's by > {cfg.margin} for every seed ({gaps})",
                   all(v < n - cfg.margin for a in others for v, n in zip(g[a], g["none"])))],
                 refute=[("no augmentation narrows the gap at all, for any seed",
                          all(v >= n for a in others for v, n in zip(g[a], g["none"])))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    bars(axes[0][0], {a: mean(v) for a, v in m["gap"].items()}, ylabel="train - test accuracy (mean over seeds)",
         title=f"MNIST-1D, {m['train_rows']} training rows, MLP 2 x {result['config']['width']}")
    bars(axes[0][1], {a: mean(v) for a, v in m["test_accuracy"].items()}, ylabel="test accuracy",
         title="test accuracy")
    return [save(fig, directory, "augmentation.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{a}: gap {mean(m['gap'][a]):.3f} (test {mean(m['test_accuracy'][a]):.3f})" for a in AUGMENTS)


EXPERIMENT = Experiment(
    name="augmentation",
    claim="on small data, augmentation narrows the gap between training and test accuracy",
    source="notes on regularisation: data augmentation (seed 000)",
    setup="trainwell.train on MNIST-1D with 600 rows (384 for training), MLP 2 x 128, Adam lr 0.001, batch 64, "
          "50 epochs, no dropout, with data.augment: none; noise 0.5 std, shift by up to 4 steps, crop (pad 4) on "
          "the fly; 4 noisy copies of every row, or 2 x the rows from per-class Gaussians, before training. The gap "
          "is the accuracy on the original training rows minus the test accuracy",
    criterion="confirmed if, for every seed, every augmentation's gap is below the unaugmented run's by more than "
              "0.05; refuted if no augmentation's gap is below the unaugmented one's, for any seed; otherwise "
              "inconclusive",
    config=Settings(), quick=Settings(n_samples=500, epochs=15, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("gap",))
