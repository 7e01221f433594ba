"""Seed 002's tree of problems, causes and remedies, run: sick runs are diagnosed by the doctor, repaired by it
(``doctor.repair``), and end near their healthy twins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, quiet_train
from trainwell.lab.plotting import figure, save

# case -> (the sick config's sections, the healthy twin's changes, the causes that name what was planted)
CASES = {
    "lr_too_high": ({"data": {"name": "digits"}, "model": {"depth": 2, "width": 64},
                     "optim": {"name": "sgd", "lr": 50.0}},
                    {"optim": {"name": "sgd", "lr": 0.1}}, ("learning_rate_too_high",)),
    "sigmoid_small_init": ({"data": {"name": "digits"},
                            "model": {"depth": 6, "width": 64, "activation": "sigmoid", "init": "normal",
                                      "init_options": {"std": 0.01}},
                            "optim": {"name": "sgd", "lr": 0.1}},
                           {"model": {"depth": 6, "width": 64, "activation": "relu", "init": "he_normal"}},
                           ("bad_initialisation", "saturating_activation")),
    "unscaled_inputs": ({"data": {"name": "breast_cancer", "standardize": False}, "model": {"depth": 1, "width": 32},
                         "optim": {"name": "sgd", "lr": 0.05}},
                        {"data": {"name": "breast_cancer", "standardize": True}}, ("input_scale",)),
}


@dataclass(frozen=True)
class Settings:
    epochs: int = 10
    margin: float = 0.05         # the repaired run's test accuracy within this of the healthy twin's
    seeds: int = 1


def config(cfg: Settings, case: str, seed: int, healthy: bool) -> dict:
    """The sick config (with doctor.repair) or its healthy twin (``trainwell train`` reruns either)."""
    sick, twin, _ = CASES[case]
    sections = {k: dict(v) for k, v in sick.items()}
    if healthy:
        for key, value in twin.items():
            sections[key] = {**{k: v for k, v in sections[key].items() if k not in ("init_options",)}, **value}
    sections["data"] = {"batch_size": 32, **sections["data"]}
    return base_config(seed=seed, train={"epochs": cfg.epochs},
                       doctor={"enabled": not healthy, "repair": not healthy}, **sections)


def run(cfg: Settings, seeds: list[int]) -> dict:
    finding, repairs, repaired, healthy, sick = {}, {}, {}, {}, {}
    for case in CASES:
        finding[case], repairs[case], repaired[case], healthy[case], sick[case] = [], [], [], [], []
        for seed in seeds:
            r = quiet_train(config(cfg, case, seed, healthy=False))
            done = r.diagnosis.get("repairs", [])
            first = done[0] if done else None
            finding[case].append(None if first is None else {"symptom": first["symptom"], "cause": first["cause"],
                                                             "changes": first["changes"]})
            repairs[case].append([{"symptom": x["symptom"], "cause": x["cause"], "changes": x["changes"]}
                                  for x in done])
            sick[case].append(None if first is None else first["before"]["val_accuracy"])
            repaired[case].append(r.metrics["test"]["accuracy"])
            healthy[case].append(quiet_train(config(cfg, case, seed, healthy=True)).metrics["test"]["accuracy"])
    return {"finding": finding, "repairs": repairs, "repaired_accuracy": repaired, "healthy_accuracy": healthy,
            "sick_val_accuracy": sick,
            "configs": {f"{c}_{k}": config(cfg, c, 0, k == "healthy") for c in CASES for k in ("sick", "healthy")}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    checks = []
    for case, (_, _, causes) in CASES.items():
        named = [f["cause"] if f else None for f in m["finding"][case]]
        pairs = [(round(a, 3), round(b, 3)) for a, b in zip(m["repaired_accuracy"][case], m["healthy_accuracy"][case])]
        checks.append((f"{case}: the doctor's first repair names {' or '.join(causes)} ({named})",
                       all(n in causes for n in named)))
        checks.append((f"{case}: repaired test accuracy within {cfg.margin} of the healthy twin's (repaired, healthy: "
                       f"{pairs})", all(a >= b - cfg.margin for a, b in pairs)))
    unrepaired = [c for c in CASES if all(f is None for f in m["finding"][c])]
    return judge(checks, refute=[(f"the doctor repairs none of the cases ({unrepaired})",
                                  len(unrepaired) == len(CASES))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1, width=7)
    ax = axes[0][0]
    x = np.arange(len(CASES))
    sick = [np.mean([v for v in m["sick_val_accuracy"][c] if v is not None] or [0.0]) for c in CASES]
    for i, (values, label) in enumerate(((sick, "sick (validation, before repair)"),
                                         ([np.mean(m["repaired_accuracy"][c]) for c in CASES], "repaired (test)"),
                                         ([np.mean(m["healthy_accuracy"][c]) for c in CASES], "healthy twin (test)"))):
        ax.bar(x + 0.27 * (i - 1), values, width=0.27, label=label)
    names = [f"{c}\n{(m['finding'][c][0] or {}).get('cause')}" for c in CASES]
    ax.set_xticks(x, names, fontsize=8)
    ax.set(ylabel="accuracy", ylim=(0, 1.05), title="the doctor's diagnosis (cause below) and repair")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return [save(fig, directory, "doctor_tree.png")]


def summary(m: dict) -> str:
    return "; ".join(f"{c}: {(m['finding'][c][0] or {}).get('cause')} -> {m['repaired_accuracy'][c][0]:.3f} "
                     f"(healthy {m['healthy_accuracy'][c][0]:.3f})" for c in CASES)


EXPERIMENT = Experiment(
    name="doctor_tree",
    claim="sick runs of seed 002's tree (a rate far too high, a deep sigmoid net from a tiny start, unscaled inputs) "
          "are diagnosed by the doctor, which names the planted cause, and its repair brings them near their "
          "healthy twins",
    source="notes on what to do when training goes wrong: the problem, cause and remedy tree (seed 002)",
    setup="trainwell.train with doctor.repair=true (at most 2 repairs), 10 epochs, batch 32: digits MLP 2 x 64 "
          "with plain SGD at lr 50 (twin: lr 0.1); digits MLP 6 x 64 of sigmoids from normal(std 0.01), SGD lr "
          "0.1 (twin: ReLU with He init); breast cancer MLP 1 x 32, SGD lr 0.05, data.standardize=false (twin: "
          "true). The finding is the doctor's first repair's; accuracies on the test split",
    criterion="confirmed if, for every case and seed, the doctor's first repair names the planted cause "
              "(learning_rate_too_high; bad_initialisation or saturating_activation; input_scale) and the "
              "repaired run's test accuracy is at most 0.05 below its healthy twin's; refuted if the doctor "
              "repairs none of the cases; otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=3),
    run=run, verdict=verdict, plot=plot, summary=summary,
    keys=("finding", "repaired_accuracy", "healthy_accuracy"))
