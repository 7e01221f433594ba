"""trainwell tune in one process on the journal file: scores, pruning (median and doctor), outputs, resume, errors."""

import csv
import json
import re

import pytest
import torch

optuna = pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed: pip install -e '.[tune]'")

import trainwell  # noqa: E402
from trainwell.doctor import SYMPTOMS  # noqa: E402
from trainwell.errors import TrainwellError  # noqa: E402
from trainwell.loop import Trainer  # noqa: E402
from trainwell.data import Split  # noqa: E402
from trainwell.selection.tune import TrialPruning, tune  # noqa: E402


def _history(run_dir):
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_trials_are_runs_scored_on_validation_and_best_yaml_reruns(tiny_base, tmp_path, monkeypatch):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {log_uniform: [2e-2, 1e-1]}\nmodel.width: {int: [8, 16]}\n")
    tiny_base = {**tiny_base, "doctor": {"enabled": False}}  # scores and files here; the doctor's pruning below
    s = tune(tiny_base, space, trials=3, out=tmp_path / "study", sampler="random", pruner="none")
    root = tmp_path / "study"
    assert s["counts"] == {"trials": 3, "budget": 3, "complete": 3, "pruned": 0, "failed": 0, "running": 0,
                           "waiting": 0, "retried": 0}
    rows = list(csv.DictReader((root / "trials.csv").open()))
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    for r in rows:  # a trial's value is its best epoch's validation accuracy, read back from its own history
        trial_dir = root / r["dir"]
        assert {"config.yaml", "history.jsonl", "metrics.json", "model.safetensors"} <= {p.name for p in trial_dir.iterdir()}
        assert float(r["value"]) == max(h["val_accuracy"] for h in _history(trial_dir))
        cfg = trainwell.load_config(trial_dir / "config.yaml")
        assert cfg.optim.lr == float(r["optim.lr"]) and cfg.model.width == int(r["model.width"])
        assert not cfg.doctor.repair
    best = max(rows, key=lambda r: float(r["value"]))
    assert s["best"]["number"] == int(best["number"]) and s["best"]["value"] == float(best["value"])
    assert (root / "best.yaml").read_text() == (root / best["dir"] / "config.yaml").read_text()
    assert {"history.png", "importance.png", "summary.json", "study.json", "journal.log"} <= {p.name for p in root.iterdir()}
    # `trainwell train best.yaml` reruns the best trial: the same validation scores, epoch by epoch
    monkeypatch.chdir(tmp_path)
    from typer.testing import CliRunner
    from trainwell.cli import app

    result = CliRunner().invoke(app, ["train", str(root / "best.yaml"), "-q", "-o", "rerun"])
    assert result.exit_code == 0, result.output
    again = [h["val_accuracy"] for h in _history(tmp_path / "rerun")]
    assert again == pytest.approx([h["val_accuracy"] for h in _history(root / best["dir"])], abs=1e-9)


def test_the_doctor_prunes_sick_trials_and_says_of_what(tiny_base, tmp_path):
    # a grid of two learning rates: SGD at 60 blows up (the doctor finds it), at 0.1 it trains
    tiny_base = {**tiny_base, "optim": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 4, "progress": False}}
    s = tune(tiny_base, {"optim.lr": {"choice": [0.1, 60.0]}}, trials=5, out=tmp_path / "s", sampler="grid",
             pruner="none")
    assert s["counts"]["trials"] == 2 and "the grid has 2 points: 2 trials, not 5" in s["notes"]
    trials = {t.params["optim.lr"]: t for t in optuna.load_study(
        study_name="tiny", storage=optuna.storages.journal.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "s" / "journal.log")))).trials}
    sick, well = trials[60.0], trials[0.1]
    assert well.state.name == "COMPLETE"
    assert sick.state.name == "PRUNED"
    assert sick.user_attrs["symptom"] in SYMPTOMS and sick.user_attrs["severity"] in ("warning", "error")
    assert sick.user_attrs["pruned_by"] == sick.user_attrs["symptom"] and "cause" in sick.user_attrs
    diagnosis = json.loads((tmp_path / "s" / sick.user_attrs["dir"] / "diagnosis.json").read_text())
    assert sick.user_attrs["symptom"] in [f["symptom"] for f in diagnosis["findings"]]
    assert sick.user_attrs["epochs"] < tiny_base["train"]["epochs"] or sick.user_attrs["symptom"] == "nan_loss"
    assert s["pruned"] == {sick.user_attrs["symptom"]: 1}
    assert s["line"] == f"2 trials: 1 complete, 1 pruned (1 {sick.user_attrs['symptom']}), 0 failed"


def test_the_median_pruner_stops_a_trial_behind_the_others(tiny_base):
    """TrialPruning in a real Trainer: after a first trial at 100% every epoch, a model that learns nothing
    (lr 0) is pruned after its first epoch, when MedianPruner (no warm-up) says so."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    first = study.ask()
    for epoch in (1, 2, 3):
        first.report(1.0, epoch)
    study.tell(first, 1.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(2, 2)
    pruning = TrialPruning(study.ask(), "val_accuracy")
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), torch.nn.functional.cross_entropy,
                      Split(x, y), Split(x, y), epochs=5, batch_size=16, callbacks=[pruning])
    history = trainer.fit()
    assert len(history) == 1 and pruning.reason == {"pruned_by": "pruner"}


def test_a_trial_whose_config_fails_fails_alone(tiny_base, tmp_path):
    # model.name=cnn is a valid name, but not for tabular moons: found when the trial trains
    s = tune(tiny_base, {"model.name": {"choice": ["mlp", "cnn"]}}, trials=2, out=tmp_path / "s", sampler="grid")
    assert s["counts"]["complete"] == 1 and s["counts"]["failed"] == 1
    assert s["failed"] == {"error": 1}
    assert len(s["errors"]) == 1 and "model 'cnn' needs signal or image data" in s["errors"][0]
    rows = list(csv.DictReader((tmp_path / "s" / "trials.csv").open()))
    assert [r["state"] for r in sorted(rows, key=lambda r: r["model.name"])] == ["FAIL", "COMPLETE"]


def test_running_again_continues_the_study(tiny_base, tmp_path):
    space = {"optim.lr": {"log_uniform": [2e-2, 1e-1]}}
    tune(tiny_base, space, trials=2, out=tmp_path / "s", sampler="random")
    s = tune(tiny_base, space, trials=3, out=tmp_path / "s", sampler="random")
    assert s["counts"]["trials"] == 3
    rows = list(csv.DictReader((tmp_path / "s" / "trials.csv").open()))
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    assert len({r["optim.lr"] for r in rows}) == 3  # the second session draws new points
    s = tune(tiny_base, space, trials=3, out=tmp_path / "s", sampler="random")  # nothing left to run
    assert s["counts"]["trials"] == 3
    with pytest.raises(TrainwellError, match="started with another space"):
        tune(tiny_base, {"optim.lr": {"uniform": [0.01, 1]}}, trials=3, out=tmp_path / "s")
    with pytest.raises(TrainwellError, match="started with another metric"):
        tune(tiny_base, space, trials=3, out=tmp_path / "s", metric="val_loss")


def test_a_timeout_takes_no_new_trial_after_it_and_says_so(tiny_base, tmp_path, run_cli):
    import yaml

    base = {**tiny_base, "doctor": {"enabled": False}, "train": {"epochs": 1, "progress": False}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "space.yaml").write_text("optim.lr: {log_uniform: [2e-2, 1e-1]}\n")
    timeout = 2.0
    torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)  # the first optimizer of a process imports torch's
    # compiler stack (~5 s): done here, so that the timeout sees trials of ~0.2 s, not one of 5 s
    code, out, err = run_cli(["tune", tmp_path / "base.yaml", "--space", tmp_path / "space.yaml", "--trials", "1000",
                              "--timeout", str(timeout), "--sampler", "random", "--out", tmp_path / "s", "-q"])
    assert code == 0, err
    trials = optuna.load_study(study_name="tiny", storage=optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "s" / "journal.log")))).get_trials()
    n = len(trials)
    assert 2 <= n <= 100  # trials of a few tenths of a second: far fewer than 1000
    # every trial finished: complete, or pruned by the median rule once five trials have reported
    assert sorted(t.number for t in trials) == list(range(n)) and {t.state.name for t in trials} <= {"COMPLETE",
                                                                                                     "PRUNED"}
    pruned = sum(t.state.name == "PRUNED" for t in trials)
    # the worker started before its first trial, so a trial started after first + timeout broke the timeout
    first = min(t.datetime_start for t in trials)
    assert all((t.datetime_start - first).total_seconds() < timeout for t in trials)
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["counts"]["trials"] == summary["counts"]["complete"] + pruned == n
    assert summary["counts"]["budget"] == 1000
    assert sorted(p.name for p in (tmp_path / "s").glob("trial-*")) == sorted(f"trial-{i}" for i in range(n))
    lines = re.sub(r" ?\n(?!note|best|study directory)", " ", out).splitlines()  # a narrow terminal's wrapping
    assert [line for line in lines if line.startswith("note:") and "timeout" in line] == [
        f"note: stopped on the timeout: no new trial after {timeout:g} s ({n} of 1000 trials); running the command "
        "again goes on"], out
    by = f" ({pruned} pruner)" if pruned else ""
    assert lines[0] == f"{n} trials: {n - pruned} complete, {pruned} pruned{by}, 0 failed"


@pytest.mark.parametrize("args, message", [
    (["--space", "nope.yaml"], "error: space file not found: nope.yaml"),
    (["--space", "space.yaml", "--sampler", "bayes"], "error: --sampler takes tpe, random, grid, got 'bayes'"),
    (["--space", "space.yaml", "--trials", "0"], "error: --trials and --jobs must be >= 1, got 0 and 1"),
    (["--space", "space.yaml", "--timeout", "0"], "error: --timeout must be > 0 seconds, got 0.0"),
    (["--space", "space.yaml", "--timeout", "-1"], "error: --timeout must be > 0 seconds, got -1.0"),
    (["--space", "space.yaml", "--storage", "mysql://u@h/db"], "error: --storage takes postgresql://"),
    (["--space", "space.yaml", "--set", "model.widht=3"], "error: unknown config key 'model.widht'"),
    ([], "error: tune needs a search space: --space SPACE.yaml"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, args, message):
    import sys

    from trainwell.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text("optim.lr: {log_uniform: [1e-3, 1]}\n")
    monkeypatch.setattr(sys, "argv", ["trainwell", "tune", *args, "--out", "s", "-q"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "s").exists()


def test_a_directory_that_holds_something_else_is_refused(tiny_base, tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    with pytest.raises(TrainwellError, match="holds no study"):
        tune(tiny_base, {"optim.lr": {"log_uniform": [1e-2, 1]}}, trials=1, out=tmp_path / "s")
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["notes.txt"]


def test_plots_false_draws_no_plots_and_writes_the_rest(tiny_base, tmp_path):
    tiny_base = {**tiny_base, "doctor": {"enabled": False}}
    s = tune(tiny_base, {"optim.lr": {"choice": [0.05, 0.1]}}, trials=2, out=tmp_path / "s", sampler="grid",
             pruner="none", plots=False)
    names = {p.name for p in (tmp_path / "s").iterdir()}
    assert not [n for n in names if n.endswith(".png")] and s["plots"] == {} and "no plots: plots=False" in s["notes"]
    assert {"trials.csv", "best.yaml", "summary.json"} <= names and s["counts"]["complete"] == 2
