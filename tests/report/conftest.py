"""Runs to draw: trained for real where a run can be had in seconds, written by hand where the case is hostile
or odd (a <script> in every string, NaN and Inf, zero epochs, 10,000 epochs); and a real headless browser."""

import math

import pytest

import trainwell
from report_runs import HOSTILE, SICK, TINY, StopAfter, finding, write_run


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """name -> run directory, each trained for real (well under a minute together)."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    made["healthy"] = trainwell.train({**TINY, "name": "healthy"}, out=root / "healthy").dir
    made["repaired"] = trainwell.train({**SICK, "name": "repaired"}, out=root / "repaired").dir
    made["failed"] = trainwell.train({**SICK, "name": "failed", "optim": {"name": "sgd", "lr": 1e5},
                                      "doctor": {"repair": False}}, out=root / "failed").dir  # NaN at step 3
    made["hostile"] = trainwell.train({**TINY, "name": HOSTILE}, out=root / "hostile").dir
    with pytest.raises(trainwell.Interrupted):
        trainwell.train({**TINY, "name": "interrupted", "train": {"epochs": 50, "progress": False}},
                        out=root / "interrupted", callbacks=[StopAfter(3)], handle_signals=True)
    made["interrupted"] = root / "interrupted"
    return made


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """A real `trainwell tune` study of 8 tiny trials, a grid: SGD at 0.1 trains, at 60 the doctor prunes it; a
    cnn on tabular data fails; half the trials carry a hostile run name, a parameter value of the page."""
    pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed: pip install -e '.[tune]'")
    from trainwell.selection import tune

    root = tmp_path_factory.mktemp("study") / "s"
    base = {**TINY, "name": "tiny", "optim": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 3, "progress": False}}
    tune(base, {"optim.lr": {"choice": [0.1, 60.0]}, "model.name": {"choice": ["mlp", "cnn"]},
                "name": {"choice": ["plain", HOSTILE]}}, trials=8, out=root, sampler="grid", pruner="none")
    return root


@pytest.fixture
def odd_runs(tmp_path):
    """Hand-written runs: hostile strings everywhere, NaN/Inf, zero epochs, 10,000 epochs."""
    made = {}
    made["hostile_files"] = write_run(
        tmp_path / "hostile_files",
        [{"epoch": 1, "step": 4, "train_loss": 0.7, "val_loss": 0.8, HOSTILE: 1.0}],
        config={"name": HOSTILE, "data": {"name": HOSTILE, "options": {HOSTILE: HOSTILE}}, "train": {"epochs": 1}},
        diagnosis={"audit": [], "notes": [HOSTILE],
                   "findings": [finding(symptom=HOSTILE, layer=HOSTILE, remedy=HOSTILE, cause=HOSTILE,
                                        evidence={HOSTILE: HOSTILE})],
                   "repairs": [{"attempt": 1, "symptom": HOSTILE, "changes": [HOSTILE], "before": {}, "after": {}}]},
        metrics={"status": HOSTILE, "weights": HOSTILE},
        stats=[{"step": 0, "epoch": 1, "layers": {HOSTILE: {"grad_rms": 0.1}},
                "activations": {HOSTILE: {"kind": HOSTILE, "std": 1.0, "hist": [1, 2, 3]}}, "non_finite": 0}])
    nan = [{"epoch": i, "train_loss": v, "val_loss": w, "train_accuracy": 0.5, "val_accuracy": 0.5, "lr": 0.1}
           for i, (v, w) in enumerate([(1.0, 1.1), (0.9, math.inf), (math.nan, math.nan), (-math.inf, 2.0)], 1)]
    made["nan"] = write_run(tmp_path / "nan", nan, diagnosis={"findings": [finding("nan_loss", "error", 9, 3)]},
                            stats=[{"step": 0, "epoch": 1, "loss": 1.0, "layers": {"a": {"grad_rms": 0.1}}},
                                   {"step": 9, "epoch": 3, "loss": "NaN", "layers": {"a": {"grad_rms": "Infinity"}},
                                    "non_finite": 2}])
    made["zero"] = write_run(tmp_path / "zero", [], config={"name": "zero", "train": {"epochs": 10}})
    long = [{"epoch": i, "step": 4 * i, "train_loss": 1 / i + 0.01 * math.sin(i), "val_loss": 1 / i ** 0.5,
             "train_accuracy": 1 - 1 / (i + 1), "val_accuracy": 0.9, "lr": 1e-3} for i in range(1, 10_001)]
    stats = [{"step": 4 * i, "epoch": i, "layers": {f"l{k}": {"grad_rms": 1e-3 * (k + 1), "update": 1e-3}
                                                  for k in range(3)},
              "activations": {f"a{k}": {"kind": "relu", "std": 1.0, "dead_batch": 0.1,
                                        "hist": [(i + b) % 7 for b in range(40)]} for k in range(2)}}
             for i in range(1, 10_001)]
    made["long"] = write_run(tmp_path / "long", long, stats=stats,
                             diagnosis={"findings": [finding(epoch=5000, step=20000)]},
                             metrics={"best_epoch": 10_000, "status": "completed"})
    return made
