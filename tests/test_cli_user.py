"""What a new user hits (issue 24) at the command line: one line for each mistake, own data, predict, show."""

import csv
import hashlib
import json
import struct
import sys

import numpy as np
import pytest
import yaml

import trainwell
from trainwell.cli import main
from trainwell.runs.evaluation import predict

TINY = ["--set", "model.width=8", "--set", "model.depth=1", "--set", "train.epochs=3", "-q"]


def run_cli(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["trainwell", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


def one_line_error(code, err, expected):
    assert code == 2, err
    assert err.startswith("error: ") and expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture
def moons_csv(tmp_path):
    from sklearn.datasets import make_moons

    x, y = make_moons(200, noise=0.2, random_state=0)
    path = tmp_path / "moons.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x1", "x2", "class"])
        w.writerows([[a, b, c] for (a, b), c in zip(x.tolist(), y.tolist())])
    return path


@pytest.fixture
def csv_run(moons_csv, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["train", "--data", moons_csv, "--target", "class", *TINY, "--out", tmp_path / "run"],
                             monkeypatch, capsys)
    assert code == 0, err
    return tmp_path / "run"


def test_train_on_a_csv_then_evaluate_it(csv_run, moons_csv, monkeypatch, capsys):
    data = yaml.safe_load((csv_run / "config.yaml").read_text())["data"]
    assert data["path"] == str(moons_csv.resolve()) and data["target"] == "class" and data["shape"] == [200, 2]
    assert data["sha256"] == hashlib.sha256(moons_csv.read_bytes()).hexdigest()
    metrics = trainwell.evaluate_run(csv_run)
    code, out, _ = run_cli(["evaluate", csv_run, "--json"], monkeypatch, capsys)
    assert code == 0 and abs(json.loads(out)["accuracy"] - metrics["accuracy"]) < 1e-12
    code, out, _ = run_cli(["evaluate", csv_run, "--data", moons_csv, "--target", "class"], monkeypatch, capsys)
    assert code == 0 and "rows: 200" in out


def test_train_with_a_data_set_name(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["train", "--data", "moons", *TINY, "--out", tmp_path / "run"], monkeypatch, capsys)
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["name"] == "moons"


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_an_unknown_data_name_lists_the_names(command, tmp_path, monkeypatch, capsys, csv_run):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--data", "nosuchset", "-q", "--out", tmp_path / "new"] if command == "train" \
        else ["evaluate", csv_run, "--data", "nosuchset"]
    code, _, err = run_cli(args, monkeypatch, capsys)
    one_line_error(code, err, "'nosuchset' is neither a data set")
    assert "moons" in err and "mnist1d" in err and not (tmp_path / "new").exists()


def test_bad_data_files_are_one_line(tmp_path, monkeypatch, capsys, csv_run):
    (tmp_path / "empty.csv").write_text("")
    code, _, err = run_cli(["train", "--data", tmp_path / "empty.csv", "-q", "--out", tmp_path / "e"],
                           monkeypatch, capsys)
    one_line_error(code, err, "is empty")
    assert not (tmp_path / "e").exists()
    np.savez(tmp_path / "f.npz", x=np.zeros((200, 2)), y=np.zeros(150))
    code, _, err = run_cli(["evaluate", csv_run, "--data", tmp_path / "f.npz"], monkeypatch, capsys)
    one_line_error(code, err, "200 rows of x but 150 labels")


def test_a_damaged_model_file_is_refused_in_one_line(csv_run, monkeypatch, capsys):
    path = csv_run / "model.safetensors"
    blob = bytearray(path.read_bytes())
    start = 8 + struct.unpack("<Q", bytes(blob[:8]))[0]
    blob[start:start + 400] = b"\xff" * min(400, len(blob) - start)
    path.write_bytes(bytes(blob))
    code, out, err = run_cli(["evaluate", csv_run], monkeypatch, capsys)
    one_line_error(code, err, "corrupt")
    assert "nan" not in out


def test_predict_writes_predictions_and_probabilities(csv_run, moons_csv, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["predict", csv_run, moons_csv, "--target", "class", "--proba", "--out",
                            tmp_path / "pred.csv"], monkeypatch, capsys)
    assert code == 0, err
    with open(tmp_path / "pred.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction", "p_0", "p_1"] and len(rows) == 201
    table = np.array(rows[1:], dtype=float)
    x = np.loadtxt(moons_csv, delimiter=",", skiprows=1)[:, :2]
    expected = predict(csv_run, x)
    np.testing.assert_array_equal(table[:, 0], expected["predictions"].numpy())
    np.testing.assert_allclose(table[:, 1:], expected["probabilities"].numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(table[:, 1:].sum(axis=1), 1.0, atol=1e-5)
    # features only, to standard output
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    code, out, _ = run_cli(["predict", csv_run, tmp_path / "x.csv"], monkeypatch, capsys)
    assert code == 0 and out.split() == ["prediction", *map(str, expected["predictions"].tolist())]


def test_predict_refuses_a_wrong_shape_and_its_own_input(csv_run, moons_csv, monkeypatch, capsys):
    code, _, err = run_cli(["predict", csv_run, moons_csv], monkeypatch, capsys)  # the label column is there
    one_line_error(code, err, "the model expects (2,)")
    before = moons_csv.read_bytes()
    code, _, err = run_cli(["predict", csv_run, moons_csv, "--target", "class", "--out", moons_csv],
                           monkeypatch, capsys)
    one_line_error(code, err, "would overwrite")
    assert moons_csv.read_bytes() == before


def test_show_prints_a_past_run(tmp_path, monkeypatch, capsys):
    # unscaled inputs: the repair turns standardisation on before the first epoch
    args = ["train", "--set", "data.name=breast_cancer", "--set", "data.standardize=false", "--set",
            "doctor.repair=true", "--set", "model.width=8", "--set", "train.epochs=3", "-q", "--out", tmp_path / "run"]
    run_cli(args, monkeypatch, capsys)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    diagnosis = json.loads((tmp_path / "run" / "diagnosis.json").read_text())
    assert diagnosis["repairs"]
    (tmp_path / "run" / "model.safetensors").unlink()  # show reads the records only, it never retrains
    code, out, err = run_cli(["show", tmp_path / "run"], monkeypatch, capsys)
    assert code == 0, err
    words = " ".join(out.split())
    assert f"epochs: {metrics['epochs_run']}" in words and f"best epoch: {metrics['best_epoch']}" in words
    assert f"{metrics['test']['accuracy']:.4f}" in words
    assert "repair 1:" in words and " ".join(diagnosis["repairs"][0]["changes"]) in words
    code, _, err = run_cli(["show", tmp_path], monkeypatch, capsys)
    one_line_error(code, err, "not a trainwell run directory")


def test_version(monkeypatch, capsys):
    code, out, _ = run_cli(["--version"], monkeypatch, capsys)
    assert code == 0 and out.strip() == f"trainwell {trainwell.__version__}"


def test_help_says_what_quiet_hides(monkeypatch, capsys):
    code, out, _ = run_cli(["train", "--help"], monkeypatch, capsys)
    words = " ".join(out.replace("│", " ").split())
    assert code == 0 and "findings as they appear" in words and "--data" in words and "--target" in words


def test_a_sequence_task_with_an_mlp_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", "--set", "data.name=reverse", "--set", "model.name=mlp", "-q"],
                           monkeypatch, capsys)
    one_line_error(code, err, "sequence tasks take model.name=seq2seq")
    assert list(tmp_path.iterdir()) == []


def test_quiet_hides_the_findings_as_they_appear_but_the_summary_names_them(tmp_path, monkeypatch, capsys):
    args = ["train", "--set", "data.name=breast_cancer", "--set", "data.standardize=false", "--set", "model.width=8",
            "--set", "train.epochs=2", "-q", "--out", tmp_path / "run"]
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    found = json.loads((tmp_path / "run" / "diagnosis.json").read_text())["audit"]
    assert any(f["symptom"] == "unscaled_inputs" and f["severity"] == "warning" for f in found)
    words = " ".join(out.split())
    assert "[warning]" not in words  # not as they appear...
    assert "warning unscaled_inputs" in words  # ...but in the summary


def test_the_summary_shows_sequence_accuracy_for_a_sequence_task(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["train", "-q", "--set", "data.name=copy", "--set", "model.name=seq2seq",
                              "--set", "data.n_samples=300", "--set", "train.epochs=1", "--out", tmp_path / "seq"],
                             monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "seq" / "metrics.json").read_text())
    assert "sequence accuracy" in out and f"{metrics['test']['sequence_accuracy']:.4f}" in out
