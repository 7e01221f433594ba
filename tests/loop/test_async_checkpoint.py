"""Asynchronous checkpoints: snapshot on the training thread, written on a writer thread.

What these tests pin down (issue 22): training goes on while a checkpoint is
written; the file holds the state of the moment of the save, not of the moment
of the write; the next save, the end of the fit and an interruption
(``save(wait=True)``) wait for the write in flight; a failed background write is
raised on the training thread in one line naming the file and the cause, and
leaves the previous checkpoint intact.
"""

import errno
import threading

import pytest
import torch

from trainwell.data import Split
from trainwell.loop import Callback, Checkpoint, CheckpointError, Trainer, load_checkpoint
from trainwell.loop import checkpoint as ck
from trainwell.loop.checkpoint import latest_checkpoint


def _trainer(callbacks, epochs=4, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(96, 6)
    data = Split(x, (x[:, 0] + x[:, 1] > 0).long())
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    return Trainer(net, opt, torch.nn.functional.cross_entropy, data, epochs=epochs, batch_size=32,
                   callbacks=callbacks, generator=torch.Generator().manual_seed(seed))


class _Weights(Callback):
    """The weights and Adam moments each epoch ended with (what its checkpoint must hold)."""

    def __init__(self):
        self.at = {}

    def on_epoch_end(self, trainer):
        self.at[trainer.step] = ({k: v.clone() for k, v in trainer.model.state_dict().items()},
                                 [s["exp_avg"].clone() for s in trainer.optimizer.state.values()])


def test_training_goes_on_while_the_checkpoint_is_written_and_the_file_holds_the_saved_moment(tmp_path,
                                                                                              monkeypatch):
    real = ck.atomic_save_safetensors
    trained_on, writers = threading.Event(), []

    def slow_write(path, tensors, metadata):
        writers.append(threading.current_thread().name)
        if len(writers) == 1:  # hold the first write until training has taken more steps
            assert trained_on.wait(timeout=30), "training did not go on during the write"
        return real(path, tensors, metadata)

    class Steps(Callback):
        def on_batch_end(self, trainer):
            if trainer.step >= 3 + 2:  # two updates after the first checkpoint (end of epoch 1, step 3)
                trained_on.set()

    monkeypatch.setattr(ck, "atomic_save_safetensors", slow_write)
    weights = _Weights()
    cb = Checkpoint(tmp_path, "cfg", every_epochs=1, best=False, keep=10)
    _trainer([weights, cb, Steps()]).fit()  # weights first: it records before the checkpoint is taken
    assert set(writers) == {"trainwell-checkpoint"}  # every file written off the training thread
    assert cb._in_flight is None and cb._writer is None  # the end of the fit waited for the last write
    for step, (model, moments) in weights.at.items():
        state = load_checkpoint(tmp_path / f"step-{step:09d}.safetensors", "cfg")
        assert state["trainer"]["step"] == step
        for key, value in model.items():
            assert torch.equal(state["model"][key], value), (step, key)  # not the weights of the write's time
        saved = [s["exp_avg"] for s in state["optimizer"]["state"].values()]
        assert all(torch.equal(a, b) for a, b in zip(saved, moments))


def test_host_buffers_are_reused_between_saves_and_released_at_the_end(tmp_path):
    seen = []

    class Spy(Checkpoint):
        def _write(self, path, snapshot, events):
            seen.append({k: t.data_ptr() for k, t in snapshot[1].items() if self._buffers.get(k) is t})
            super()._write(path, snapshot, events)

    cb = Spy(tmp_path, "cfg", every_epochs=1, best=False)
    _trainer([cb], epochs=3).fit()
    assert len(seen) == 3 and seen[1] == seen[2]  # the same host tensors (Adam's state exists from epoch 1)
    assert len(seen[2]) >= 4 + 2 * 4  # 4 parameters, Adam's 2 moments of each (and its step counts)
    assert cb._buffers == {}


def test_a_failed_background_write_is_raised_on_the_training_thread_and_keeps_the_previous_file(tmp_path,
                                                                                                monkeypatch):
    real, calls, raised_at = ck.atomic_save_safetensors, [0], []

    def full_disk_on_second(path, tensors, metadata):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, tensors, metadata)

    class Where(Callback):
        def on_epoch_start(self, trainer):
            raised_at.append(trainer.epoch)

    monkeypatch.setattr(ck, "atomic_save_safetensors", full_disk_on_second)
    cb = Checkpoint(tmp_path, "cfg", every_epochs=1, best=False, keep=5, retries=1)
    trainer = _trainer([Where(), cb], epochs=6)
    with pytest.raises(CheckpointError) as err:
        trainer.fit()
    message = str(err.value)
    assert "\n" not in message and "step-000000006.safetensors" in message and "No space left on device" in message
    assert "earlier checkpoints are intact" in message
    # raised on the training thread at the next save: the end of epoch 3, not later
    assert trainer.epoch == 3 and raised_at == [0, 1, 2]
    assert latest_checkpoint(tmp_path).name == "step-000000003.safetensors"
    assert load_checkpoint(latest_checkpoint(tmp_path), "cfg")["trainer"]["step"] == 3


def test_a_failed_last_write_is_raised_at_the_end_of_the_fit(tmp_path, monkeypatch):
    real = ck.atomic_save_safetensors

    def fail_last(path, tensors, metadata):
        if path.name == "step-000000006.safetensors":
            raise OSError(errno.EIO, "Input/output error")
        return real(path, tensors, metadata)

    monkeypatch.setattr(ck, "atomic_save_safetensors", fail_last)
    cb = Checkpoint(tmp_path, "cfg", every_epochs=1, best=False, retries=1)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*step-000000006\.safetensors: "
                                              r"Input/output error"):
        _trainer([cb], epochs=2).fit()
    assert latest_checkpoint(tmp_path).name == "step-000000003.safetensors"


def test_an_unexpected_error_in_the_writer_is_not_lost(tmp_path, monkeypatch):
    def broken(path, tensors, metadata):
        raise ValueError("bad header")

    monkeypatch.setattr(ck, "atomic_save_safetensors", broken)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*ValueError: bad header"):
        _trainer([Checkpoint(tmp_path, "cfg", every_epochs=1, best=False)], epochs=2).fit()


def test_save_with_wait_returns_once_the_write_in_flight_and_its_own_are_on_disk(tmp_path, monkeypatch):
    real, release, order = ck.atomic_save_safetensors, threading.Event(), []

    def gated(path, tensors, metadata):
        if threading.current_thread().name == "trainwell-checkpoint":
            release.wait(timeout=30)
        order.append((path.name, threading.current_thread().name))
        return real(path, tensors, metadata)

    class Interrupt(Callback):  # what trainwell.runs.signals does on SIGINT/SIGTERM
        def on_batch_end(self, trainer):
            if trainer.step == 5:
                threading.Timer(0.2, release.set).start()
                self.path = cb.save(trainer, wait=True)
                raise KeyboardInterrupt

    monkeypatch.setattr(ck, "atomic_save_safetensors", gated)
    cb = Checkpoint(tmp_path, "cfg", every_epochs=1, best=False, keep=5)
    stop = Interrupt()
    with pytest.raises(KeyboardInterrupt):
        _trainer([cb, stop]).fit()
    # the epoch-1 checkpoint (background) finished before the interruption's own (on this thread)
    assert order == [("step-000000003.safetensors", "trainwell-checkpoint"),
                     ("step-000000005.safetensors", "MainThread")]
    assert load_checkpoint(stop.path, "cfg")["trainer"]["step"] == 5
    assert not list(tmp_path.glob(".*.tmp"))


def test_asynchronous_and_synchronous_checkpoints_hold_the_same_bytes_of_state(tmp_path):
    for background in (True, False):
        _trainer([Checkpoint(tmp_path / str(background), "cfg", every_epochs=2, best=False)]).fit()
    a = load_checkpoint(tmp_path / "True" / "step-000000012.safetensors")
    b = load_checkpoint(tmp_path / "False" / "step-000000012.safetensors")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(a["trainer"]["history"]) == strip(b["trainer"]["history"])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
