"""Noisy copies made before the split put near-copies of test rows into training: the test score rises, the
model is no better on fresh rows, and the data audit names the leak."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainwell.data import Raw, load_data, split_data
from trainwell.data.augment import expand_training_rows
from trainwell.doctor import audit
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import figure, save

VARIANTS = ("clean", "leaky")
FRESH_SEED = 1042  # another generation seed: new rows from the same templates


@dataclass(frozen=True)
class Settings:
    n_samples: int = 1000
    copies: int = 3              # noisy copies of every row (0.1 of each feature's std)
    epochs: int = 20
    width: int = 128
    lr: float = 0.001
    inflation: float = 0.1       # the leaky test score must exceed the clean one (and its own fresh one) by this
    seeds: int = 2


def config(cfg: Settings, seed: int, augment: bool) -> dict:
    """Clean: mnist1d with its own test split, the noisy copies made after the split (training rows only)."""
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": 64,
                                        "augment": {"duplicate": cfg.copies if augment else 0}},
                       model={"name": "mlp", "depth": 2, "width": cfg.width},
                       optim={"name": "adam", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def leaky_data(clean, copies: int, seed: int):
    """The mistake: every row (test rows too) gets its noisy copies first, then the pool is split."""
    x = torch.cat([clean.train.x, clean.val.x, clean.test.x])
    y = torch.cat([clean.train.y, clean.val.y, clean.test.y])
    x, y = expand_training_rows(x, y, duplicate=copies, seed=seed)
    return split_data("mnist1d-copied-before-split", Raw(x.numpy(), y.numpy(), "signal"),
                      val_fraction=0.2, test_fraction=0.2, seed=seed)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def leak_finding(data) -> dict | None:
    found = [f for f in audit(data.train, data.val, data.test, n_classes=data.n_classes, standardized=True)
             if f.symptom == "data_leakage"]
    return {"symptom": found[0].symptom, "cause": found[0].cause, "evidence": found[0].evidence} if found else None


def run(cfg: Settings, seeds: list[int]) -> dict:
    clean = load_data("mnist1d", n_samples=cfg.n_samples)
    fresh = load_data("mnist1d", n_samples=cfg.n_samples, seed=FRESH_SEED).test  # rows never seen
    acc = {v: [] for v in VARIANTS}
    fresh_acc = {v: [] for v in VARIANTS}
    findings: dict[str, list] = {v: [] for v in VARIANTS}
    for seed in seeds:
        leaky = leaky_data(clean, cfg.copies, seed)
        for variant, data in (("clean", clean), ("leaky", leaky)):
            findings[variant].append(leak_finding(data))  # what trainwell.train's audit sees first
            # clean: trainwell adds the copies to its training rows; leaky: the copies are already in every split
            r = quiet_train(config(cfg, seed, augment=variant == "clean"), data=data)
            acc[variant].append(r.metrics["test"]["accuracy"])
            fresh_acc[variant].append(accuracy(r.model, fresh.x, fresh.y))
    return {"test_accuracy": acc, "fresh_accuracy": fresh_acc, "audit_finding": findings,
            "configs": {"clean": config(cfg, 0, True), "leaky": config(cfg, 0, False)},
            "note": "configs.leaky trains on data given from Python (every row copied before the split)"}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    a, f, fa, e = m["test_accuracy"], m["audit_finding"], m["fresh_accuracy"], cfg.inflation
    pairs = [(round(c, 3), round(lk, 3)) for c, lk in zip(a["clean"], a["leaky"])]
    own = [(round(t, 3), round(n, 3)) for t, n in zip(a["leaky"], fa["leaky"])]
    named = [x["cause"] if x else None for x in f["leaky"]]
    clean_named = [x["cause"] if x else None for x in f["clean"]]
    return judge([(f"the leak raises the test accuracy by > {e} for every seed (clean, leaky: {pairs})",
                   all(lk > c + e for c, lk in pairs)),
                  (f"the leaky model's test accuracy exceeds its accuracy on fresh rows by > {e} (test, fresh: {own})",
                   all(t > n + e for t, n in own)),
                  (f"the audit finds data_leakage (near_duplicates) in the leaky splits for every seed ({named})",
                   all(n == "near_duplicates" for n in named)),
                  (f"and none in the clean splits ({clean_named})", all(x is None for x in f["clean"]))],
                 refute=[(f"the leak does not raise the test accuracy for any seed ({pairs})",
                          all(lk <= c for c, lk in pairs)),
                         (f"the audit finds no leak in the leaky splits for any seed ({named})",
                          all(x is None for x in f["leaky"]))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1, width=6)
    ax = axes[0][0]
    for i, (key, label) in enumerate((("test_accuracy", "its own test split"), ("fresh_accuracy", "fresh rows"))):
        ax.bar(np.arange(2) + 0.4 * i, [mean(m[key][v]) for v in VARIANTS], width=0.4, label=label)
    named = ["audit: " + (x["cause"] if x else "no leak") for x in (m["audit_finding"][v][0] for v in VARIANTS)]
    ax.set_xticks(np.arange(2) + 0.2, [f"{v}\n({n})" for v, n in zip(VARIANTS, named)])
    ax.set(ylabel="accuracy", ylim=(0, 1), title="copies made before the split vs after it")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return [save(fig, directory, "leakage.png")]


def summary(m: dict) -> str:
    a, fa = m["test_accuracy"], m["fresh_accuracy"]
    named = m["audit_finding"]["leaky"][0]
    return (f"test acc clean {mean(a['clean']):.3f} leaky {mean(a['leaky']):.3f}; fresh rows clean "
            f"{mean(fa['clean']):.3f} leaky {mean(fa['leaky']):.3f}; audit on leaky: "
            f"{named['cause'] if named else 'nothing'}")


EXPERIMENT = Experiment(
    name="leakage",
    claim="data crossing the split (copies made before splitting) inflates the test score, and the audit names it",
    source="notes on data splits and leakage (seed 000)",
    setup="MNIST-1D (1000 rows), MLP 2 x 128, Adam lr 0.001, 20 epochs, via trainwell.train. Clean: mnist1d's own "
          "test split, 3 noisy copies (0.1 std) of each training row added after the split (data.augment.duplicate). "
          "Leaky: the same 1000 rows and copies, made before a random 60/20/20 split, so test rows have near-copies "
          "in training. Both models are also scored on fresh rows (another generation seed); trainwell.doctor.audit "
          "(what trainwell.train runs first) is applied to each run's splits",
    criterion="confirmed if, for every seed, the leaky test accuracy exceeds the clean one by more than 0.1 and the "
              "leaky model's accuracy on fresh rows by more than 0.1, and the audit finds data_leakage with cause "
              "near_duplicates in the leaky splits and no leakage in the clean ones; refuted if the leak raises the "
              "test accuracy for no seed, or the audit finds no leak in the leaky splits for any seed; otherwise "
              "inconclusive",
    config=Settings(), quick=Settings(n_samples=500, epochs=5, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("test_accuracy", "audit_finding"))
