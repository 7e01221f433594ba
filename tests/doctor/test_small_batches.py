"""At batch size 1 one row's loss is no run's loss: the within-epoch divergence check judges means over 32 rows."""

import pytest

import trainwell
import trainwell.doctor.doctor as doctor_module
from trainwell.doctor.thresholds import Thresholds

MOONS_SGD = {"data": {"name": "moons", "batch_size": 1}, "train": {"epochs": 3, "progress": False}}


def _divergences(run):
    return [f for f in run.findings if f.symptom == "divergence"]


def test_one_samples_loss_is_not_a_divergence(tmp_path, monkeypatch):
    # the case: a healthy run at batch size 1 whose sample at step 949 has loss 8.07 against a first 0.62
    healthy = trainwell.train(MOONS_SGD, out=tmp_path / "window")
    assert healthy.metrics["test"]["accuracy"] > 0.95 and _divergences(healthy) == []
    monkeypatch.setattr(doctor_module, "Thresholds", lambda: Thresholds(divergence_rows=1))  # the old rule
    old = trainwell.train(MOONS_SGD, out=tmp_path / "one-row")
    (found,) = _divergences(old)
    assert found.evidence["loss"] == pytest.approx(8.07, abs=0.01) and found.evidence["first_loss"] < 1


def test_a_real_divergence_at_batch_size_1_is_still_found(tmp_path):
    run = trainwell.train({**MOONS_SGD, "optim": {"name": "sgd", "lr": 5.0}, "model": {"activation": "tanh"}},
                          out=tmp_path / "sick")
    assert run.findings and any(f.symptom in ("divergence", "nan_loss", "learning_rate_too_high")
                                for f in run.findings)
    found = _divergences(run)
    assert not found or found[0].evidence.get("mean_of_steps") == 32
