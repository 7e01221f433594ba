"""What a run records: repairs that survive a resume, honest statuses and exit codes, valid JSON (issue 24)."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

import trainwell
from trainwell.loop import Callback

SICK = {"name": "sick", "seed": 0, "data": {"name": "moons", "n_samples": 300, "batch_size": 32},
        "model": {"width": 16, "depth": 2}, "optim": {"name": "sgd", "lr": 20.0},
        "train": {"epochs": 6, "progress": False}, "doctor": {"repair": True}}


class InterruptRepaired(Callback):
    """Sends this process SIGINT at the end of the second epoch of an attempt with a repaired rate."""

    def __init__(self) -> None:
        self.armed = True

    def on_epoch_end(self, trainer) -> None:
        if self.armed and trainer.optimizer.param_groups[0]["lr"] < 20 and trainer.epoch == 2:
            self.armed = False
            os.kill(os.getpid(), signal.SIGINT)


def _timeless(repairs):
    """Repair records without their seconds (the only thing an interruption changes)."""
    return [{k: ({kk: vv for kk, vv in v.items() if kk != "train_seconds"} if isinstance(v, dict) else v)
             for k, v in r.items()} for r in repairs]


def test_a_resumed_repaired_run_keeps_its_repairs_and_the_config_given(tmp_path):
    out = tmp_path / "run"
    stop = InterruptRepaired()
    with pytest.raises(trainwell.Interrupted):
        trainwell.train(SICK, out=out, callbacks=[stop], handle_signals=True)
    during = json.loads((out / "diagnosis.json").read_text())
    assert [r["symptom"] for r in during["repairs"]] and during["config_given"]["optim"]["lr"] == 20.0
    resumed = trainwell.train(resume=out, callbacks=[stop])
    whole = trainwell.train(SICK, out=tmp_path / "whole")
    assert _timeless(resumed.diagnosis["repairs"]) == _timeless(whole.diagnosis["repairs"]) != []
    assert resumed.diagnosis["config_given"]["optim"]["lr"] == 20.0
    assert resumed.config.optim.lr == whole.config.optim.lr != 20.0
    saved = json.loads((out / "diagnosis.json").read_text())
    assert _timeless(saved["repairs"]) == _timeless(whole.diagnosis["repairs"])


def test_a_run_that_ends_in_nan_fails_with_its_own_exit_code_and_valid_json(tmp_path):
    out = tmp_path / "nan"
    exe = os.path.join(os.path.dirname(sys.executable), "trainwell")
    proc = subprocess.run([exe, "train", "-q", "--out", str(out), "--set", "data.name=moons",
                           "--set", "optim.name=sgd", "--set", "optim.lr=20", "--set", "train.epochs=5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert re.search(r"stopped at epoch \d+, step \d+: nan loss", proc.stderr) and "Traceback" not in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=pytest.fail)  # no bare NaN
    assert metrics["status"] == "failed" and metrics["stopped"]["reason"].startswith("nan loss")
    assert metrics["train"]["loss"] is None or isinstance(metrics["train"]["loss"], float)
    json.loads((out / "diagnosis.json").read_text(), parse_constant=pytest.fail)


def test_a_completed_run_says_so_and_which_weights_it_kept(tmp_path):
    cfg = {**SICK, "optim": {"name": "adam", "lr": 0.01}, "doctor": {"repair": False}}
    run = trainwell.train({**cfg, "early_stopping": {"enabled": False}}, out=tmp_path / "ok")
    assert run.metrics["status"] == "completed" and run.metrics["weights"] == "last epoch"
    stopped = trainwell.train({**cfg, "train": {"epochs": 60, "progress": False},
                               "early_stopping": {"enabled": True, "patience": 2}}, out=tmp_path / "es")
    if stopped.metrics["epochs_run"] < 60:
        assert stopped.metrics["status"] == "early_stopped"
    assert stopped.metrics["weights"] == f"best epoch {stopped.metrics['best_epoch']} by val_accuracy (early stopping)"


def test_train_threads_sets_the_runs_threads_and_puts_the_callers_back(tmp_path):
    import torch

    seen = []

    class Threads(Callback):
        def on_fit_start(self, trainer):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    cfg = {**SICK, "optim": {"name": "adam", "lr": 0.01}, "doctor": {"repair": False},
           "train": {"epochs": 1, "progress": False, "threads": 1}}
    trainwell.train(cfg, out=tmp_path / "one", callbacks=[Threads()])
    assert seen == [1] and torch.get_num_threads() == before


def test_overfitting_is_info_when_early_stopping_already_restores_the_best_weights(tmp_path):
    # a wide net on 150 noisy rows for 60 epochs overfits; with early stopping on, that is treated, not a warning
    cfg = {"seed": 0, "data": {"name": "moons", "n_samples": 150, "noise": 0.35, "batch_size": 16},
           "model": {"width": 64, "depth": 3, "dropout": 0.0}, "optim": {"name": "adam", "lr": 0.01},
           "train": {"epochs": 60, "progress": False}, "checkpoint": {"every_epochs": None, "best": False},
           "doctor": {"every": 50}}
    plain = trainwell.train({**cfg, "early_stopping": {"enabled": False}}, out=tmp_path / "plain")
    overfit = [f for f in plain.findings if f.symptom == "overfitting"]
    assert overfit and overfit[0].severity == "warning"
    es = {**cfg, "early_stopping": {"enabled": True, "patience": 5, "monitor": "val_loss"}}
    stopped = trainwell.train(es, out=tmp_path / "es")
    treated = [f for f in stopped.findings if f.symptom == "overfitting"]
    assert treated and all(f.severity == "info" and "early stopping" in f.remedy for f in treated)
