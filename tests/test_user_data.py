"""What a new user hits (issue 24) from Python: the model file's checksum, file modes, own data, predictions,
a model family that cannot take the data."""

import hashlib
import os
import struct
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import yaml
from sklearn.model_selection import train_test_split

import trainwell
from trainwell.config import ModelConfig
from trainwell.data import Data, Raw
from trainwell.data.datasets import split_data
from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text, read_model_file, tensors_crc32
from trainwell.models import build_model
from trainwell.runs.evaluation import load_arrays, predict, run_summary


@contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def moons():
    """200 moons rows as numpy arrays (the oracle's copy)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(200, noise=0.2, random_state=0)
    return x.astype(np.float32), y


@pytest.fixture
def moons_csv(tmp_path, moons):
    """The moons rows as a CSV with a header and the label in the first column."""
    x, y = moons
    path = tmp_path / "moons.csv"
    rows = "\n".join(f"{int(c)},{a!r},{b!r}" for (a, b), c in zip(x.tolist(), y))
    path.write_text("label,x1,x2\n" + rows + "\n")
    return path


def _data_offset(path):
    """Where a safetensors file's tensor bytes start (after the 8-byte length and the JSON header)."""
    return 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]


# --------------------------------------------------------------------------- the model file

def test_the_model_file_has_a_checksum_and_a_damaged_one_is_refused(tiny_config, tmp_path):
    run = trainwell.train(tiny_config, out=tmp_path / "run")
    path = run.dir / "model.safetensors"
    header, state = read_model_file(path)
    assert header["crc32"] == tensors_crc32(header["data"], state)
    blob = bytearray(path.read_bytes())
    start = _data_offset(path)
    assert len(blob) - start > 800
    blob[start + 200:start + 600] = b"\xff" * 400  # 400 bytes of NaN floats over the weights
    path.write_bytes(bytes(blob))
    with pytest.raises(TrainwellError, match="corrupt: its checksum does not match") as info:
        trainwell.load_model(run.dir)
    assert "\n" not in str(info.value)
    with pytest.raises(TrainwellError, match="corrupt"):
        trainwell.evaluate_run(run.dir)


def test_a_model_file_without_a_checksum_still_loads(tiny_config, tmp_path):
    from safetensors.torch import save_file

    run = trainwell.train(tiny_config, out=tmp_path / "run")
    path = run.dir / "model.safetensors"
    header, state = read_model_file(path)
    save_file(state, str(path), metadata={"format": header["format"], "data": header["data"]})  # an older file
    x = run.data.test.x
    torch.testing.assert_close(trainwell.load_model(run.dir)(x), run.model.eval()(x))


def test_the_checksum_is_the_checkpoints_one():
    """The same CRC-32 as a checkpoint's: over the header text, then every tensor's bytes in key order."""
    import zlib

    tensors = {"b": torch.arange(3, dtype=torch.float32), "a": torch.ones(2, dtype=torch.float64),
               "empty": torch.zeros(0)}
    expected = zlib.crc32(b"text")
    expected = zlib.crc32(np.ones(2, np.float64).tobytes(), expected)
    expected = zlib.crc32(np.arange(3, dtype=np.float32).tobytes(), expected)
    assert tensors_crc32("text", tensors) == f"{expected:08x}"


# --------------------------------------------------------------------------- file modes

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640)])
def test_atomic_writes_follow_the_umask(tmp_path, mask, mode):
    with umask(mask):
        atomic_write_text(tmp_path / "f.txt", "x")
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_run_files_follow_the_umask(tiny_config, tmp_path):
    with umask(0o022):
        run = trainwell.train({**tiny_config, "checkpoint": {"every_epochs": 2}}, out=tmp_path / "run")
    files = [p for p in run.dir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"config.yaml", "history.jsonl", "metrics.json", "diagnosis.json", "model.safetensors"} <= names
    assert any(p.parent.name == "checkpoints" for p in files)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: "0o644" for p in files}


# --------------------------------------------------------------------------- own data

def _file_config(tiny_config, path, **data):
    return {**tiny_config, "data": {"path": str(path), "batch_size": 32, **data}}


def test_training_on_a_csv_file_splits_it_by_the_config(tiny_config, moons_csv, moons, tmp_path):
    x, y = moons
    run = trainwell.train(_file_config(tiny_config, moons_csv, target="label"), out=tmp_path / "run")
    # the oracle: the same stratified splits as an embedded set, test first, then validation
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=42)
    x_train, x_val, _, _ = train_test_split(x_rest, y_rest, test_size=0.2, stratify=y_rest, random_state=43)
    np.testing.assert_array_equal(run.data.test.x.numpy(), x_test)
    np.testing.assert_array_equal(run.data.test.y.numpy(), y_test)
    np.testing.assert_array_equal(run.data.val.x.numpy(), x_val)
    torch.testing.assert_close(run.data.mean, torch.from_numpy(x_train.mean(axis=0)))
    recorded = yaml.safe_load((run.dir / "config.yaml").read_text())["data"]
    assert recorded["name"] == "custom"
    assert recorded["path"] == str(moons_csv.resolve())
    assert recorded["target"] == "label"
    assert recorded["sha256"] == hashlib.sha256(moons_csv.read_bytes()).hexdigest()
    assert recorded["shape"] == [200, 2]
    assert trainwell.evaluate_run(run.dir)["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    again = trainwell.train(run.dir / "config.yaml", out=tmp_path / "again")  # a rerun reads the same data
    assert again.metrics["test"] == run.metrics["test"]


def test_a_changed_data_file_is_refused(tiny_config, moons_csv, tmp_path):
    run = trainwell.train(_file_config(tiny_config, moons_csv, target="label"), out=tmp_path / "run")
    moons_csv.write_text(moons_csv.read_text())  # written again, the same bytes: still the run's data
    assert trainwell.evaluate_run(run.dir)["rows"] == 40
    moons_csv.write_text(moons_csv.read_text() + "0,0.5,0.5\n")  # one row more
    with pytest.raises(TrainwellError, match="sha256") as info:
        trainwell.evaluate_run(run.dir)
    assert "\n" not in str(info.value)
    with pytest.raises(TrainwellError, match="sha256"):
        trainwell.train(run.dir / "config.yaml", out=tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_an_npz_file_trains_and_images_keep_their_shape(tiny_config, tmp_path):
    digits = trainwell.load_data("digits")
    np.savez(tmp_path / "d.npz", x=digits.train.x.numpy(), y=digits.train.y.numpy())
    run = trainwell.train(_file_config(tiny_config, tmp_path / "d.npz", kind="image"), out=tmp_path / "run")
    assert run.data.kind == "image" and run.data.input_shape == (8, 8) and run.data.n_classes == 10
    assert yaml.safe_load((run.dir / "config.yaml").read_text())["data"]["shape"] == [len(digits.train), 8, 8]
    expected = split_data("custom", Raw(digits.train.x.numpy(), digits.train.y.numpy(), "image"),
                          val_fraction=0.2, test_fraction=0.2, seed=42)
    torch.testing.assert_close(run.data.test.x, expected.test.x)


def test_python_data_are_recorded_as_custom(tiny_config, moons, tmp_path):
    x, y = moons
    data = split_data("mine", Raw(x, y, "tabular"), val_fraction=0.2, test_fraction=0.2, seed=0)
    run = trainwell.train(tiny_config, out=tmp_path / "run", data=data)
    assert yaml.safe_load((run.dir / "config.yaml").read_text())["data"]["name"] == "custom"
    with pytest.raises(TrainwellError, match="not embedded.*--data") as info:
        trainwell.evaluate_run(run.dir)
    assert "\n" not in str(info.value)
    np.savez(tmp_path / "test.npz", x=data.test.x.numpy(), y=data.test.y.numpy())
    assert trainwell.evaluate_run(run.dir, tmp_path / "test.npz")["accuracy"] == \
        pytest.approx(run.metrics["test"]["accuracy"])
    with pytest.raises(TrainwellError, match="not embedded"):  # a rerun of its config cannot guess the data
        trainwell.train(run.dir / "config.yaml", out=tmp_path / "again")


def test_the_config_s_own_data_given_from_python_keep_their_name(tiny_config, tmp_path):
    """cv and ensembles pass the config's own set (folds of it): its name stays, evaluate rebuilds it."""
    data = trainwell.load_data("moons", n_samples=200, seed=42)
    run = trainwell.train(tiny_config, out=tmp_path / "run", data=data)
    assert run.config.data.name == "moons"
    assert trainwell.evaluate_run(run.dir)["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])


# --------------------------------------------------------------------------- the loader

def test_a_csv_header_is_detected_and_target_names_a_column(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    (tmp_path / "n.csv").write_text("1,2,0\n3,4,1\n")
    (tmp_path / "first.csv").write_text("label,a,b\n0,1,2\n1,3,4\n")
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf\r\n\"label\",a,b\r\n0,1,2\r\n\r\n1,3,4\r\n")  # BOM, CRLF, blanks
    for name, target in (("h.csv", None), ("n.csv", None), ("first.csv", "label"), ("n.csv", -1), ("n.csv", 2),
                         ("excel.csv", "label"), ("first.csv", "0")):
        split = load_arrays(tmp_path / name, target)
        torch.testing.assert_close(split.x, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        assert split.y.tolist() == [0, 1]
    assert load_arrays(tmp_path / "n.csv", 0).y.tolist() == [1, 3]
    with pytest.raises(TrainwellError, match="no column 'kind'.*a, b, label"):
        load_arrays(tmp_path / "h.csv", "kind")
    with pytest.raises(TrainwellError, match="no header row"):
        load_arrays(tmp_path / "n.csv", "label")


@pytest.mark.parametrize("text, expected", [
    ("", "is empty"),
    ("\n\n", "is empty"),
    ("a,b,label\n", "no data rows"),
    ("1,2,0\n3,x,1\n", "cannot read"),
    ("1,2,0\n3,4\n", "cannot read"),
    ("a,b\n1,2,0\n", "header has 2 columns"),
    ("1,2,0.5\n", "labels must be non-negative integers"),
    ("1,nan,0\n", r"non-finite values in rows \[0\]"),
])
def test_bad_csv_files_give_one_line_and_no_warning(tmp_path, text, expected):
    (tmp_path / "f.csv").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainwellError, match=expected) as info:
            load_arrays(tmp_path / "f.csv")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("arrays, expected", [
    ({"x": np.zeros((200, 2)), "y": np.zeros(150)}, "200 rows of x but 150 labels"),
    ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, "no rows"),
    ({"x": np.zeros((3, 2))}, "must hold arrays 'x' and 'y'"),
    ({"x": np.zeros((3, 2)), "y": np.array(["a", "b", "c"])}, "labels must be non-negative integers"),
])
def test_bad_npz_files_give_one_line(tmp_path, arrays, expected):
    np.savez(tmp_path / "f.npz", **arrays)
    with pytest.raises(TrainwellError, match=expected):
        load_arrays(tmp_path / "f.npz")


def test_an_unknown_name_is_neither_a_data_set_nor_a_file(tiny_config, tmp_path):
    run = trainwell.train(tiny_config, out=tmp_path / "run")
    with pytest.raises(TrainwellError, match=r"'nosuchset' is neither a data set \(mnist1d, digits.*\) nor a file"):
        trainwell.evaluate_run(run.dir, "nosuchset")
    with pytest.raises(TrainwellError, match=r"200 rows of x but 150 labels"):
        np.savez(tmp_path / "f.npz", x=np.zeros((200, 2)), y=np.zeros(150))
        trainwell.evaluate_run(run.dir, tmp_path / "f.npz")


# --------------------------------------------------------------------------- predictions

def test_predict_equals_the_model_and_checks_the_shape(tiny_config, tmp_path):
    run = trainwell.train(tiny_config, out=tmp_path / "run")
    x = run.data.test.x
    got = predict(run.dir, x.numpy())
    with torch.no_grad():
        probabilities = torch.softmax(run.model.eval()(x), dim=1)
    torch.testing.assert_close(got["probabilities"], probabilities)
    assert torch.equal(got["predictions"], probabilities.argmax(1))
    with pytest.raises(TrainwellError, match=r"rows have shape \(3,\), the model expects \(2,\)") as info:
        predict(run.dir, np.zeros((4, 3)))
    assert "\n" not in str(info.value)
    with pytest.raises(TrainwellError, match="non-finite"):
        predict(run.dir, np.full((2, 2), np.nan))


# --------------------------------------------------------------------------- a past run

def test_run_summary_reads_the_files_only(tiny_config, tmp_path):
    run = trainwell.train({**tiny_config, "doctor": {"enabled": True}}, out=tmp_path / "run")
    summary = run_summary(run.dir)
    assert summary["epochs"] == 4 and summary["best_epoch"] == run.metrics["best_epoch"]
    assert summary["final"]["test"]["accuracy"] == run.metrics["test"]["accuracy"]
    assert summary["status"] == "finished"
    (run.dir / "metrics.json").unlink()  # an interrupted run: what history.jsonl says
    summary = run_summary(run.dir)
    assert summary["status"] == "unfinished" and summary["final"]["val"]["loss"] == run.history[-1]["val_loss"]
    with pytest.raises(TrainwellError, match="not a trainwell run directory"):
        run_summary(tmp_path)


# --------------------------------------------------------------------------- a family and its data

def test_a_family_refuses_data_it_cannot_take():
    with pytest.raises(TrainwellError, match="model 'mlp' needs .* data, but the data set is sequence; "
                                             "sequence tasks take model.name=seq2seq"):
        build_model(ModelConfig(name="mlp"), (12,), 8, "sequence", input_vocab=8, target_length=12)
    with pytest.raises(TrainwellError, match="model 'cnn' needs signal or image data"):
        build_model(ModelConfig(name="cnn"), (2,), 2, "tabular")


def test_a_sequence_task_with_an_mlp_writes_nothing(tmp_path):
    with pytest.raises(TrainwellError, match="seq2seq"):
        trainwell.train({"data": {"name": "reverse"}, "model": {"name": "mlp"}, "train": {"progress": False}},
                        out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
