"""An ensemble (the mean of its members' probabilities) beats its members: lower NLL, higher accuracy."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean
from trainwell.lab.plotting import figure, save
from trainwell.selection import train_ensemble


@dataclass(frozen=True)
class Settings:
    members: int = 5
    n_samples: int = 2000
    epochs: int = 15
    width: int = 128
    lr: float = 0.001
    margin: float = 0.01         # the ensemble's accuracy must exceed the mean member's by more than this
    seeds: int = 2


def config(cfg: Settings, seed: int) -> dict:
    """The members' config (``trainwell ensemble --members N`` reruns it: member i has seed + i)."""
    return base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples, "batch_size": 64},
                       model={"name": "mlp", "depth": 2, "width": cfg.width},
                       optim={"name": "adam", "lr": cfg.lr},
                       train={"epochs": cfg.epochs, "threads": 1})  # ensemble workers take all cores otherwise


def run(cfg: Settings, seeds: list[int]) -> dict:
    member_nll, member_acc, ens_nll, ens_acc = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="trainwell-lab-") as tmp:
        for seed in seeds:
            spec = train_ensemble(config(cfg, seed * cfg.members), members=cfg.members, out=f"{tmp}/ensemble-{seed}")
            root = Path(spec["dir"])
            tests = [json.loads((root / m["dir"] / "metrics.json").read_text())["test"] for m in spec["members"]]
            member_nll.append([t["loss"] for t in tests])
            member_acc.append([t["accuracy"] for t in tests])
            ens_nll.append(spec["test"]["loss"])
            ens_acc.append(spec["test"]["accuracy"])
    return {"member_nll": member_nll, "member_accuracy": member_acc, "ensemble_nll": ens_nll,
            "ensemble_accuracy": ens_acc, "configs": {"members": config(cfg, 0)},
            "note": "trainwell ensemble --members N trains them (members differ in seed); per lab seed s the "
                    "members' seeds are s*N ... s*N+N-1"}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    rows = list(zip(m["member_nll"], m["ensemble_nll"], m["member_accuracy"], m["ensemble_accuracy"]))
    nll = [(round(min(mn), 4), round(en, 4)) for mn, en, _, _ in rows]
    acc = [(round(mean(ma), 4), round(ea, 4)) for _, _, ma, ea in rows]
    return judge([(f"the ensemble's test NLL is below its best member's for every seed (best, ensemble: {nll})",
                   all(en < best for best, en in nll)),
                  (f"its test accuracy exceeds the mean member's by > {cfg.margin} for every seed (mean, ensemble: "
                   f"{acc})", all(ea > ma + cfg.margin for ma, ea in acc))],
                 refute=[("the ensemble's NLL is above the mean member's, or its accuracy below, for every seed",
                          all(en > mean(mn) or ea < mean(ma) for mn, en, ma, ea in rows))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    for ax, (mk, ek, label) in zip(axes[0], (("member_nll", "ensemble_nll", "test NLL"),
                                             ("member_accuracy", "ensemble_accuracy", "test accuracy"))):
        for s, (members, ens) in enumerate(zip(m[mk], m[ek])):
            ax.scatter([s] * len(members), members, color="C0", label="members" if s == 0 else None)
            ax.scatter([s], [ens], color="C3", marker="*", s=160, label="ensemble" if s == 0 else None)
        ax.set_xticks(range(len(m[mk])), [f"seed {s}" for s in range(len(m[mk]))])
        ax.set(ylabel=label, title=f"{result['config']['members']} MLPs on MNIST-1D, mean of probabilities")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return [save(fig, directory, "ensembles.png")]


def summary(m: dict) -> str:
    best = mean([min(v) for v in m["member_nll"]])
    return (f"members NLL {mean([mean(v) for v in m['member_nll']]):.3f} (best {best:.3f})"
            f" acc {mean([mean(v) for v in m['member_accuracy']]):.3f}; ensemble NLL {mean(m['ensemble_nll']):.3f} "
            f"acc {mean(m['ensemble_accuracy']):.3f}")


EXPERIMENT = Experiment(
    name="ensembles",
    claim="an ensemble (the mean of its members' probabilities) beats its members: lower test NLL, higher accuracy",
    source="notes on regularisation: ensembles and model averaging (seed 000)",
    setup="trainwell.selection.train_ensemble (trainwell ensemble): 5 MLPs 2 x 128 on MNIST-1D (2000 rows) that "
          "differ only in their seed, Adam lr 0.001, batch 64, 15 epochs, no dropout, combined by averaging their "
          "probabilities; test NLL and accuracy of every member and of the ensemble",
    criterion="confirmed if, for every seed, the ensemble's test NLL is below its best member's and its test "
              "accuracy exceeds the mean member's by more than 0.01; refuted if, for every seed, the ensemble's NLL "
              "is above the mean member's or its accuracy below the mean member's; otherwise inconclusive",
    config=Settings(), quick=Settings(members=3, n_samples=500, epochs=5, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary,
    keys=("member_nll", "ensemble_nll", "member_accuracy", "ensemble_accuracy"))
