"""Batch size from 1 (SGD) to the whole set: faster epochs, but more of them; mini-batches win on time."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from trainwell.config import resolve_config
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, quiet_train
from trainwell.lab.plotting import curves, figure, save
from trainwell.loop import StopAtTarget
from trainwell.runs import configured_data

FULL = 1_000_000  # a batch >= the training split: batch gradient descent


@dataclass(frozen=True)
class Settings:
    batch_sizes: tuple[int, ...] = (1, 8, 64, 512, FULL)
    lr: float = 0.05
    depth: int = 2
    width: int = 64
    target: float = 0.9          # validation accuracy to reach
    max_epochs: int = 150
    per_epoch_ratio: float = 10.0  # batch 1's seconds per epoch >= this x the whole batch's
    time_margin: float = 0.5       # the best middle batch's time to target <= this x both ends'
    seeds: int = 3


def label(bs: int) -> str:
    return "full" if bs >= FULL else str(bs)


def config(cfg: Settings, bs: int, seed: int) -> dict:
    """The run's trainwell config (``trainwell train`` reruns it, without the stop at the target)."""
    return base_config(seed=seed, data={"name": "digits", "batch_size": bs},
                       model={"depth": cfg.depth, "width": cfg.width}, optim={"name": "sgd", "lr": cfg.lr},
                       train={"epochs": cfg.max_epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    data = configured_data(resolve_config(config(cfg, 1, 0)).data)  # loaded once
    labels = [label(bs) for bs in cfg.batch_sizes]
    per_epoch, epochs, seconds, updates, curve = ({b: [] for b in labels} for _ in range(5))
    for seed in seeds:  # seeds outside, so that a spell of load falls on every batch size alike
        for bs, b in zip(cfg.batch_sizes, labels):
            stop = StopAtTarget("val_accuracy", cfg.target)
            r = quiet_train(config(cfg, bs, seed), callbacks=[stop], data=data)
            secs = [h["seconds"] for h in r.history]
            per_epoch[b].append(statistics.median(secs))
            epochs[b].append(stop.reached_epoch)
            seconds[b].append(sum(secs) if stop.reached_epoch else None)
            updates[b].append(r.history[-1]["step"] if stop.reached_epoch else None)
            curve[b].append([h["val_accuracy"] for h in r.history])
    return {"seconds_per_epoch": per_epoch, "epochs_to_target": epochs, "seconds_to_target": seconds,
            "updates_to_target": updates, "val_accuracy_curve": curve, "train_rows": len(data.train),
            "configs": {b: config(cfg, bs, seeds[0]) for bs, b in zip(cfg.batch_sizes, labels)}}


def inf(x: float | None) -> float:
    """Not reached (None) counts as infinitely long."""
    return math.inf if x is None else x


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    labels = list(m["epochs_to_target"])
    first, last, middle = labels[0], labels[-1], labels[1:-1]
    spe, ep, sec = m["seconds_per_epoch"], m["epochs_to_target"], m["seconds_to_target"]
    n = len(spe[first])
    faster = all(spe[first][s] >= cfg.per_epoch_ratio * spe[last][s] for s in range(n))
    rising = all(all(inf(ep[a][s]) <= inf(ep[b][s]) for a, b in zip(labels, labels[1:]))
                 and inf(ep[first][s]) < inf(ep[last][s]) for s in range(n))
    best_mid = [min((inf(sec[b][s]) for b in middle), default=math.inf) for s in range(n)]
    mid_wins = all(best_mid[s] < math.inf and best_mid[s] <= cfg.time_margin * min(inf(sec[first][s]),
                                                                                   inf(sec[last][s]))
                   for s in range(n))
    ends_win = all(min(inf(sec[first][s]), inf(sec[last][s])) < best_mid[s] for s in range(n))
    fewer = all(inf(ep[last][s]) < inf(ep[first][s]) for s in range(n))
    return judge([(f"an epoch at batch {first} takes >= {cfg.per_epoch_ratio:g} x one at batch {last} for every "
                   f"seed (s/epoch {spe[first]} vs {spe[last]})", faster),
                  (f"epochs to {cfg.target} validation accuracy never fall as the batch grows, and batch {last} "
                   f"needs more than batch {first} (not reached = infinite) for every seed ({ep})", rising),
                  (f"a middle batch ({', '.join(middle)}) reaches the target in <= {cfg.time_margin} x the seconds "
                   f"of batch {first} and of batch {last} for every seed (seconds {sec})", mid_wins)],
                 refute=[(f"batch {first} or {last} reaches the target in fewer seconds than every middle batch "
                          "for every seed", ends_win),
                         (f"batch {last} needs fewer epochs than batch {first} for every seed", fewer)])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    labels = list(m["epochs_to_target"])
    fig, axes = figure(3)
    for ax, key, ylabel in ((axes[0][0], "seconds_per_epoch", "seconds per epoch"),
                            (axes[0][1], "epochs_to_target", "epochs to the target"),
                            (axes[0][2], "seconds_to_target", "seconds to the target")):
        series = {f"seed {s}": [m[key][b][s] for b in labels] for s in range(len(m[key][labels[0]]))}
        curves(ax, series, x=list(range(len(labels))), xlabel="batch size", ylabel=ylabel, log=True,
               title=ylabel + (" (missing: not reached)" if key != "seconds_per_epoch" else ""))
        ax.set_xticks(range(len(labels)), labels)
    return [save(fig, directory, "batch_size.png",
                 title=f"digits, SGD lr {result['config']['lr']}, target validation accuracy "
                       f"{result['config']['target']}")]


def summary(m: dict) -> str:
    return ", ".join(f"batch {b}: {statistics.median(m['seconds_per_epoch'][b]) * 1000:.0f} ms/epoch, "
                     f"epochs {m['epochs_to_target'][b][0]}" for b in m["epochs_to_target"])


EXPERIMENT = Experiment(
    name="batch_size",
    claim="as the batch grows from 1 (SGD) to the whole set, an epoch takes less time but more epochs are needed to "
          "reach an accuracy; a mini-batch reaches it in the least time",
    source="notes on the training process and mini-batches (seed 004)",
    setup="trainwell.train with a StopAtTarget callback: MLP 2 x 64 (ReLU) on digits (1,149 training rows), plain "
          "SGD lr 0.05 at every batch size (1, 8, 64, 512, the whole split), until the validation accuracy "
          "reaches 0.9 or 150 epochs; seconds per epoch = the median of the epochs' seconds (the history's), "
          "seconds to the target = their sum up to the epoch that reaches it",
    criterion="confirmed if, for every seed, (1) an epoch at batch 1 takes >= 10 x the seconds of one on the whole "
              "split, (2) the epochs to 0.9 validation accuracy never fall as the batch grows and the whole split "
              "needs more than batch 1 (not reached = infinite), and (3) the best of batches 8, 64, 512 reaches "
              "0.9 in <= 0.5 x the seconds of batch 1 and of the whole split; refuted if batch 1 or the whole "
              "split is faster to the target than every middle batch for every seed, or the whole split needs "
              "fewer epochs than batch 1 for every seed; otherwise inconclusive. Seconds are noisy on a shared "
              "machine: (1) and (3) are ratios with margins of 10x and 2x, far beyond the load's effect, and (2) "
              "counts epochs, which do not depend on the machine at all",
    config=Settings(), quick=Settings(batch_sizes=(1, 32, FULL), target=0.8, max_epochs=40, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary,
    keys=("seconds_per_epoch", "epochs_to_target", "seconds_to_target"))
