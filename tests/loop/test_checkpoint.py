"""Reliability: exact resume after SIGKILL, SIGINT/SIGTERM, safe and strict loading, full disks."""

import errno
import json
import os
import pickle
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import trainwell
from trainwell.errors import TrainwellError
from trainwell.loop import CheckpointError, load_checkpoint, save_checkpoint
from trainwell.loop.checkpoint import latest_checkpoint

CHILD = Path(__file__).with_name("_child.py")
SIGNAL_CHILD = Path(__file__).with_name("_signal_child.py")
FULL = os.environ.get("TRAINWELL_FULL") == "1"

# 128 training rows / batch 32 = 4 updates per epoch, 6 epochs = 24 updates; dropout, batch norm,
# a warmup + cosine schedule and Adam make every piece of state matter.
CONFIG = {"name": "resume", "seed": 11,
          "data": {"name": "moons", "n_samples": 200, "batch_size": 32},
          "model": {"name": "mlp", "depth": 2, "width": 16, "dropout": 0.3, "norm": "batch"},
          "optim": {"name": "adam", "lr": 0.01},
          "schedule": {"name": "cosine", "warmup_epochs": 2},
          "checkpoint": {"every_steps": 3, "keep": 2},
          "train": {"epochs": 6, "progress": False}}


def _params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _run_child(out, mode, n):
    return subprocess.run([sys.executable, str(CHILD), json.dumps(CONFIG), str(out), mode, str(n)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = trainwell.train(CONFIG, out=tmp_path_factory.mktemp("ref") / "run", progress=False)
    return run


def _assert_identical(run, reference):
    got, want = _params(run.model), _params(reference.model)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(run.history) == strip(reference.history)
    lines = (run.dir / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, 7))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_step_then_resume_is_bit_identical(seed, tmp_path, reference):
    step = random.Random(seed).randint(1, 23)  # anywhere: mid-epoch, at a boundary, before any checkpoint
    out = tmp_path / "run"
    proc = _run_child(out, "step", step)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if latest_checkpoint(out / "checkpoints") is None:  # killed before the first checkpoint
        with pytest.raises(TrainwellError, match="no checkpoint"):
            trainwell.train(resume=out)
        return
    _assert_identical(trainwell.train(resume=out, progress=False), reference)


@pytest.mark.parametrize("write", [2, 5])
def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(write, tmp_path, reference):
    out = tmp_path / "run"
    proc = _run_child(out, "write", write)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert any(n.endswith(".tmp") for n in names)  # the half-done write is left over...
    load_checkpoint(latest_checkpoint(out / "checkpoints"))  # ...and the previous checkpoint is intact
    run = trainwell.train(resume=out, progress=False)
    _assert_identical(run, reference)
    assert not any(p.name.endswith(".tmp") for p in (out / "checkpoints").iterdir())


def test_resume_mid_epoch_in_process(tmp_path, reference):
    """Same as the kill test without a subprocess: stop by exception right after update 10."""
    from trainwell.loop import Callback

    class Boom(Callback):
        def on_after_step(self, trainer):
            if trainer.step == 10:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        trainwell.train(CONFIG, out=tmp_path / "run", callbacks=[Boom()], progress=False)
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step-000000009.safetensors"
    _assert_identical(trainwell.train(resume=tmp_path / "run", progress=False), reference)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_and_exits_with_its_code(sig, code, tmp_path):
    out = tmp_path / "run"
    exe = os.path.join(os.path.dirname(sys.executable), "trainwell")
    epochs = 300 if FULL else 30  # the resume trains the rest of them
    args = ["train", "-q", "--out", str(out), "--set", "data.name=moons", "--set", "model.width=32",
            "--set", f"train.epochs={epochs}", "--set", "checkpoint.every_epochs=1000"]
    # the signal comes once epoch 3 is written (the child sends it itself: no polling against the clock)
    proc = subprocess.run([sys.executable, str(SIGNAL_CHILD), str(int(sig)), "3", *args], capture_output=True,
                          text=True, timeout=300)
    err = proc.stderr
    assert proc.returncode == code, err
    assert f"training interrupted by {signal.Signals(sig).name}" in err
    assert f"resume with: trainwell train --resume {out}" in err and "Traceback" not in err
    state = load_checkpoint(latest_checkpoint(out / "checkpoints"))  # written on the signal, not by schedule
    assert state["trainer"]["epoch"] >= 3 and state["trainer"]["step"] >= 3 * 5  # 640 rows / batch 128
    if sig == signal.SIGINT:
        done = subprocess.run([exe, "train", "-q", "--resume", str(out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads((out / "metrics.json").read_text())["epochs_run"] == epochs


def test_a_malicious_pickle_posing_as_a_checkpoint_runs_nothing(tmp_path):
    run = trainwell.train({**CONFIG, "train": {"epochs": 1, "progress": False}}, out=tmp_path / "run")
    (run.dir / "metrics.json").unlink()  # pretend it was interrupted
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "the payload ran"))

    for intact in (run.dir / "checkpoints").glob("*.safetensors"):  # the payload is the only "checkpoint"
        intact.unlink()
    evil = run.dir / "checkpoints" / "step-999999999.safetensors"
    evil.write_bytes(pickle.dumps({"model": Payload()}))
    with pytest.raises(CheckpointError, match="no intact checkpoint.*not a trainwell checkpoint.*nothing in it was run"):
        trainwell.train(resume=run.dir)
    torch.save({"model": Payload()}, evil)  # torch's zip format around the same pickle
    with pytest.raises(CheckpointError, match="not a trainwell checkpoint"):
        trainwell.train(resume=run.dir)
    assert not marker.exists()


def _a_checkpoint(tmp_path):
    model = torch.nn.Linear(4, 3)
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"model": model.state_dict(), "n": 3, "t": (1.5, None)}, "cfg")
    return path


def test_checkpoints_round_trip_exactly(tmp_path):
    path = _a_checkpoint(tmp_path)
    state = load_checkpoint(path, "cfg")
    assert state["n"] == 3 and state["t"] == (1.5, None)
    assert set(state["model"]) == {"weight", "bias"}


def test_truncated_and_bit_flipped_files_are_refused(tmp_path):
    path = _a_checkpoint(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a trainwell checkpoint"):
        load_checkpoint(path)
    flipped = bytearray(data)
    flipped[-5] ^= 0x10  # inside the tensor data
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="checksum does not match"):
        load_checkpoint(path)
    header = bytearray(data)
    at = bytes(header).index(b'\\"n\\"') if b'\\"n\\"' in header else bytes(header).index(b"crc32")
    header[at + 6] ^= 0x01  # inside the JSON header
    path.write_bytes(bytes(header))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_checkpoint_from_another_config_is_refused(tmp_path):
    path = _a_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="another config"):
        load_checkpoint(path, "other")


def test_resume_refuses_a_different_config_and_finished_runs(tmp_path):
    run = trainwell.train({**CONFIG, "train": {"epochs": 1, "progress": False}}, out=tmp_path / "run")
    with pytest.raises(TrainwellError, match="already finished"):
        trainwell.train(resume=run.dir)
    (run.dir / "metrics.json").unlink()
    with pytest.raises(TrainwellError, match="the config given differs"):
        trainwell.train(CONFIG, resume=run.dir)


def test_a_full_disk_stops_cleanly_and_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    import safetensors.torch

    from trainwell.loop import checkpoint as ck

    monkeypatch.setattr(ck.time, "sleep", lambda s: None)
    real, calls = safetensors.torch.save_file, [0]

    def full_after_two(tensors, path, metadata=None):
        calls[0] += 1
        if calls[0] > 2:
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full_after_two)
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*No space left on device; "
                                              "earlier checkpoints are intact"):
        trainwell.train({**CONFIG, "checkpoint": {"every_steps": 3, "keep": 5, "best": False}}, out=out)
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    # step 3 (every 3 steps) and step 4 (end of epoch 1) were written; no temporary file is left
    assert files == ["step-000000003.safetensors", "step-000000004.safetensors"]
    for name in files:
        load_checkpoint(out / "checkpoints" / name)


def test_a_transient_write_error_is_retried(tmp_path, monkeypatch):
    import safetensors.torch

    from trainwell.loop import checkpoint as ck

    monkeypatch.setattr(ck.time, "sleep", lambda s: None)
    real, calls = safetensors.torch.save_file, [0]

    def flaky(tensors, path, metadata=None):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", flaky)
    run = trainwell.train(CONFIG, out=tmp_path / "run")
    assert run.metrics["epochs_run"] == 6


def test_the_last_good_state_is_a_copy_of_the_lowest_training_loss_epoch():
    from trainwell.data import Split
    from trainwell.loop import Callback, LastGoodState, Trainer

    class Weights(Callback):  # what each epoch ended with, and a rate that makes the loss go back up
        def __init__(self):
            self.at = {}

        def on_epoch_start(self, trainer):
            if trainer.epoch == 4:
                trainer.optimizer.param_groups[0]["lr"] = 40.0

        def on_epoch_end(self, trainer):
            self.at[trainer.epoch] = [p.detach().clone() for p in trainer.model.parameters()]

    torch.manual_seed(0)
    x = torch.randn(64, 5)
    data = Split(x, (x[:, 0] > 0).long())
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    weights, good = Weights(), LastGoodState()
    history = Trainer(net, opt, torch.nn.functional.cross_entropy, data, epochs=8, batch_size=16,
                      callbacks=[weights, good]).fit()
    losses = [h["train_loss"] for h in history]
    best = min(range(8), key=losses.__getitem__) + 1
    assert best < 8 and good.epoch == best and good.train_loss == losses[best - 1]
    assert good.first_train_loss == losses[0]
    kept = good.state
    for name, a in zip(dict(net.named_parameters()), weights.at[best]):
        assert torch.equal(kept["model"][name], a)  # that epoch's weights, not the live ones
    assert kept["trainer"]["epoch"] == best and len(kept["trainer"]["history"]) == best
    assert kept["optimizer"]["param_groups"][0]["lr"] == 0.5
    assert not any(torch.equal(kept["optimizer"]["state"][i]["momentum_buffer"], opt.state[p]["momentum_buffer"])
                   for i, p in enumerate(net.parameters()))
