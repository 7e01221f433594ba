"""Early stopping at the k-fold mean best epoch: retrained on all the data for that many epochs, it tests better
than training on to the last epoch."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from trainwell.config import resolve_config
from trainwell.data import Split
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import curves, figure, save
from trainwell.loop import Callback, evaluate
from trainwell.runs import configured_data
from trainwell.selection import cross_validate


@dataclass(frozen=True)
class Settings:
    folds: int = 5
    epochs: int = 40             # the most epochs: each fold's run, and the run to the last epoch
    depth: int = 2
    width: int = 128
    lr: float = 1e-3
    batch_size: int = 32
    gain: float = 0.9            # the chosen epoch's test loss must be <= gain x the last epoch's
    seeds: int = 2


class TestLoss(Callback):
    """The test split's loss after every epoch (for the comparison only; nothing is chosen on it)."""

    def __init__(self, test: Split) -> None:
        self.test, self.losses = test, []

    def on_epoch_end(self, trainer) -> None:
        self.losses.append(evaluate(trainer.model, self.test, trainer.loss_fn)["loss"])


def config(cfg: Settings, seed: int) -> dict:
    """The config cross-validated (``trainwell cv`` and ``trainwell train`` rerun it), one torch thread."""
    return base_config(seed=seed, data={"name": "digits", "batch_size": cfg.batch_size},
                       model={"depth": cfg.depth, "width": cfg.width}, optim={"name": "adam", "lr": cfg.lr},
                       train={"epochs": cfg.epochs, "threads": 1})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = configured_data(resolve_config(config(cfg, 0)).data)
    whole = replace(data, train=Split(torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y])),
                    val=Split(data.val.x[:0], data.val.y[:0]))  # every non-test row, as cross_validate's final fit
    chosen, at_chosen, at_last, fold_best, curve, final_test = [], [], [], [], [], []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="trainwell-lab-cv-") as tmp:
            cv = cross_validate(config(cfg, seed), folds=cfg.folds, out=tmp, final_fit=True)
        probe = TestLoss(whole.test)
        quiet_train(config(cfg, seed), callbacks=[probe], data=whole)  # all non-test rows, to the last epoch
        chosen.append(cv["chosen_epochs"])
        fold_best.append([f["best_epoch"] for f in cv["folds"]])
        final_test.append(cv["final"]["test"]["loss"])  # the retrained run, stopped at the chosen epoch
        at_chosen.append(probe.losses[cv["chosen_epochs"] - 1])
        at_last.append(probe.losses[-1])
        curve.append(probe.losses)
    return {"chosen_epoch": chosen, "test_loss_at_chosen": final_test, "test_loss_at_last": at_last,
            "test_loss_at_chosen_in_long_run": at_chosen, "fold_best_epochs": fold_best, "test_loss_curve": curve,
            "configs": {"cv": config(cfg, seeds[0])}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    c, tc, tl = m["chosen_epoch"], m["test_loss_at_chosen"], m["test_loss_at_last"]
    seeds = range(len(c))
    return judge([(f"the chosen epoch is before the last ({cfg.epochs}) for every seed ({c})",
                   all(e < cfg.epochs for e in c)),
                  (f"the test loss at the chosen epoch is <= {cfg.gain} x the last epoch's for every seed "
                   f"({[round(v, 4) for v in tc]} vs {[round(v, 4) for v in tl]})",
                   all(tc[s] <= cfg.gain * tl[s] for s in seeds))],
                 refute=[("the last epoch's test loss is <= the chosen epoch's for every seed",
                          all(tl[s] <= tc[s] for s in seeds))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1)
    ax = axes[0][0]
    curves(ax, {f"seed {s}": c for s, c in enumerate(m["test_loss_curve"])},
           x=list(range(1, len(m["test_loss_curve"][0]) + 1)), xlabel="epoch",
           ylabel="test loss (all non-test rows trained on)", title="test loss; dashed: the k-fold mean best epoch")
    for s, e in enumerate(m["chosen_epoch"]):
        ax.axvline(e, color=f"C{s}", ls="--")
    return [save(fig, directory, "early_stopping.png")]


def summary(m: dict) -> str:
    return (f"chosen epochs {m['chosen_epoch']}, test loss at chosen {mean(m['test_loss_at_chosen']):.4f}, "
            f"at last {mean(m['test_loss_at_last']):.4f}")


EXPERIMENT = Experiment(
    name="early_stopping_kfold",
    claim="stopping at the k-fold mean best epoch, then retraining on all the data for that many epochs, tests "
          "better than training on to the last epoch",
    source="notes on overfitting: early stopping and validation (seed 003)",
    setup="trainwell.selection.cross_validate (5 stratified folds of the non-test rows, final_fit): MLP 2 x 128 "
          "(ReLU, no dropout) on digits, Adam lr 1e-3, batch 32, at most 40 epochs; each fold's best epoch is its "
          "lowest validation loss, the chosen epoch count their mean; the final fit trains on every non-test row "
          "for that many epochs and is scored on the test split; the same config trained on every non-test row "
          "for all 40 epochs gives the test loss at the last epoch (and, per epoch, the curve drawn)",
    criterion="confirmed if, for every seed, the chosen epoch is before the 40th and the retrained run's test loss "
              "at the chosen epoch is <= 0.9 x the test loss after all 40 epochs; refuted if the last epoch's "
              "test loss is <= the chosen epoch's for every seed; otherwise inconclusive",
    config=Settings(), quick=Settings(folds=3, epochs=12, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary,
    keys=("chosen_epoch", "test_loss_at_chosen", "test_loss_at_last"))
