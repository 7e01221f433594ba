"""Helpers of the report tests: hostile strings, hand-written runs and studies, a real interruption."""

import csv
import json
import os
import signal
from pathlib import Path

import yaml

from trainwell.loop import Callback

HOSTILE = "<script>alert('x')</script>\"'&amp;<img src=x onerror=alert(1)>"
TINY = {"seed": 3, "data": {"name": "moons", "n_samples": 200, "batch_size": 32},
        "model": {"name": "mlp", "depth": 2, "width": 16, "dropout": 0.0},
        "optim": {"name": "adam", "lr": 0.01}, "train": {"epochs": 6, "progress": False}}
SICK = {"seed": 0, "data": {"name": "moons", "n_samples": 300, "batch_size": 32},
        "model": {"width": 16, "depth": 2}, "optim": {"name": "sgd", "lr": 20.0},
        "train": {"epochs": 6, "progress": False}, "doctor": {"repair": True}}


class StopAfter(Callback):
    """Sends this process SIGINT at the end of epoch ``epoch`` (a real interruption, with a checkpoint)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer) -> None:
        if trainer.epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGINT)


def write_run(d: Path, history, *, config=None, diagnosis=None, metrics=None, stats=None) -> Path:
    """A run directory written by hand (the cases training cannot make on demand)."""
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(config or {"name": d.name, "train": {"epochs": len(history)}}))
    (d / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))  # NaN as Python writes it
    if diagnosis is not None:
        (d / "diagnosis.json").write_text(json.dumps(diagnosis))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    if stats is not None:
        (d / "stats.jsonl").write_text("".join(json.dumps(s) + "\n" for s in stats))
    return d


def finding(symptom="learning_rate_too_high", severity="warning", step=5, epoch=2, **more):
    return {"symptom": symptom, "severity": severity, "step": step, "epoch": epoch, "evidence": {"ratio": 0.5},
            "cause": None, "layer": "net.0", "remedy": "lower the rate", "remedies": [], "repaired": None, **more}


def write_study(d: Path, rows, *, name="hand", summary=None, files=None) -> Path:
    """A study directory written by hand: ``study.json``, ``trials.csv`` of ``rows`` (dicts), ``summary.json``."""
    d.mkdir(parents=True)
    (d / "study.json").write_text(json.dumps({"study": name, "storage": "journal file x", "metric": "val_accuracy"}))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with (d / "trials.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if summary is not None:
        (d / "summary.json").write_text(json.dumps(summary))
    for file, data in (files or {}).items():
        (d / file).write_bytes(data)
    return d
