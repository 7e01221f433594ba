import json
import os
import re
import subprocess
import sys

import pytest

from trainwell.cli import main


def run_cli(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["trainwell", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


TINY = ["--set", "data.name=moons", "--set", "data.n_samples=200", "--set", "model.width=8",
        "--set", "train.epochs=2"]


def test_train_then_evaluate(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["train", *TINY, "--quiet", "--out", tmp_path / "run"], monkeypatch, capsys)
    assert code == 0, err
    assert "test" in out and f"run directory: {tmp_path / 'run'}" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    code, out, err = run_cli(["evaluate", tmp_path / "run", "--json"], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_train_with_a_config_file(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: circles, n_samples: 200}\nmodel: {width: 8}\ntrain: {epochs: 1}\n")
    code, _, err = run_cli(["train", cfg, "-q", "-o", tmp_path / "run"], monkeypatch, capsys)
    assert code == 0, err
    assert "circles" in (tmp_path / "run" / "config.yaml").read_text()


@pytest.mark.parametrize("args, expected", [
    (["train", "nope.yaml"], "config file not found: nope.yaml"),
    (["train", "--set", "model.widht=3"], "unknown config key 'model.widht'; did you mean model.width"),
    (["train", "--set", "model.width"], "--set needs key=value"),
    (["train", "--set", "data.name=cifar"], "unknown dataset 'cifar'"),
    (["train", "--set", "model.activation=swish"], "valid: relu, leaky_relu"),
    (["train", "--set", "optim.lr=0"], "optim.lr"),
    (["evaluate", "no/such/run"], "run directory not found"),
])
def test_user_errors_are_one_line_exit_2_and_write_nothing(args, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_invalid_yaml_is_one_line(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model:\n  width: [1, 2\n")
    code, _, err = run_cli(["train", cfg], monkeypatch, capsys)
    assert code == 2 and "invalid YAML in" in err and err.count("\n") == 1


def test_components_lists_every_registry(monkeypatch, capsys):
    code, out, _ = run_cli(["components"], monkeypatch, capsys)
    assert code == 0
    for word in ("he_uniform", "leaky_relu", "layer", "nesterov", "mnist1d", "gru", "cross_entropy"):
        assert word in out


def test_datasets_lists_shapes_and_counts(monkeypatch, capsys):
    code, out, _ = run_cli(["datasets"], monkeypatch, capsys)
    assert code == 0
    assert "mnist1d" in out and "(40,)" in out and "(8, 8)" in out and "breast_cancer" in out


def test_console_script_end_to_end(tmp_path):
    """The installed command, in a real process: a user error prints one line, no traceback."""
    exe = os.path.join(os.path.dirname(sys.executable), "trainwell")
    proc = subprocess.run([exe, "train", "--set", "seed=-1"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid config key 'seed'") and proc.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cv_and_ensembles_from_the_command_line(tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(["cv", *TINY, "--folds", "2", "--out", tmp_path / "cv"], monkeypatch, capsys)
    assert code == 0 and "chosen epochs" in out and (tmp_path / "cv" / "cv.json").is_file()
    code, out, _ = run_cli(["ensemble", *TINY, "--members", "2", "--out", tmp_path / "ens"], monkeypatch, capsys)
    assert code == 0 and "ensemble (average)" in out
    code, out, _ = run_cli(["ensemble", *TINY, "--set", "train.epochs=30", "--set", "optim.lr=0.01", "--method",
                            "boost", "--members", "2", "--out", tmp_path / "boost"], monkeypatch, capsys)
    assert code == 0 and "weighted_vote" in out
    code, _, err = run_cli(["evaluate", tmp_path / "boost"], monkeypatch, capsys)
    assert code == 0
    code, _, err = run_cli(["ensemble", *TINY, "--method", "stacking", "--out", tmp_path / "bad"], monkeypatch, capsys)
    assert code == 2 and err.strip() == "error: --method takes members, cascade or boost, got 'stacking'"
    assert not (tmp_path / "bad").exists()


def test_a_repair_says_where_it_went_on_from(tmp_path, monkeypatch, capsys):
    late = ["--set", "data.name=digits", "--set", "model.width=128", "--set", "optim.name=momentum",
            "--set", "optim.lr=0.3", "--set", "train.epochs=30", "--set", "doctor.repair=true",
            "--set", "checkpoint.every_epochs=null"]
    code, out, err = run_cli(["train", *late, "--quiet", "--out", tmp_path / "run"], monkeypatch, capsys)
    assert code == 0, err
    repair = json.loads((tmp_path / "run" / "diagnosis.json").read_text())["repairs"][0]
    assert repair["from_epoch"] > 0
    line = " ".join(o for o in out.split() if o)  # rich wraps the line: compare the words
    assert f"{' '.join(repair['changes'])} (from epoch {repair['from_epoch']})" in line


def test_the_summary_shows_balanced_accuracy_and_says_what_the_train_row_is(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["train", *TINY, "--quiet", "--out", tmp_path / "run"], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "balanced accuracy" in out and "running mean over the epoch's batches" in out
    test_row = next(line for line in out.splitlines() if line.strip().strip("│").strip().startswith("test"))
    assert f"{metrics['test']['balanced_accuracy']:.4f}" in test_row and f"{metrics['test']['accuracy']:.4f}" in test_row
    # the best epoch is named by what chose it: early stopping's monitor (on by default), or the validation loss
    assert metrics["best_epoch_by"] == "val_accuracy"
    assert f"best epoch (by val accuracy): {metrics['best_epoch']}" in out
    code, out, err = run_cli(["train", *TINY, "--quiet", "--set", "early_stopping.enabled=false", "--out",
                              tmp_path / "all"], monkeypatch, capsys)
    metrics = json.loads((tmp_path / "all" / "metrics.json").read_text())
    assert code == 0 and metrics["best_epoch_by"] == "val_loss"
    assert f"best epoch (by val loss): {metrics['best_epoch']}" in out


def test_boosting_that_stops_at_a_round_no_better_than_chance_says_so(tmp_path, monkeypatch, capsys):
    # measured (seed 0): linear members on circles stop at round 3 of 6 (weighted errors 0.481, 0.379, then 0.524)
    code, out, _ = run_cli(["ensemble", "--set", "data.name=circles", "--set", "model.depth=0", "--set",
                            "train.epochs=3", "--set", "doctor.enabled=false", "--set", "train.progress=false",
                            "--method", "boost", "--members", "6", "--out", tmp_path / "boost"], monkeypatch, capsys)
    assert code == 0
    spec = json.loads((tmp_path / "boost" / "ensemble.json").read_text())
    kept = len(spec["weights"])
    said = re.search(r"round (\d+) of 6 was no better than chance \(weighted error ([\d.]+) >= 0\.500\): boosting "
                     r"stopped with (\d+) members", " ".join(out.split()))
    assert said is not None and spec["stopped_early"] == said.group(0)
    assert int(said.group(1)) == kept + 1 < 6 and float(said.group(2)) >= 0.5 and int(said.group(3)) == kept
    assert sum(ln.startswith("member ") for ln in out.splitlines()) == kept
