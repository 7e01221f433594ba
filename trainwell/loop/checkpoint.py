"""Checkpoints: the whole training state, written atomically, loaded without unpickling.

A checkpoint is one safetensors file. Its tensors are every tensor of the
state (model, optimizer buffers, random-generator states, the epoch's shuffle
order); its header metadata holds the rest of the state as JSON, the format
tag, the SHA-256 of the run's resolved config and a CRC-32 over everything,
so that a truncated, bit-flipped, foreign or other-config file is refused
with one line. Loading parses JSON and raw tensors only: nothing in a file can
run code.

Writes go to a temporary file that is fsync'ed and renamed over the target,
so a crash at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import queue
import random
import re
import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainwell.errors import TrainwellError
from trainwell.loop.callbacks import Callback, MetricTracker
from trainwell.io import DISK_ERRORS, UnreadableFile, atomic_save_safetensors, read_safetensors

__all__ = ["Checkpoint", "CheckpointError", "DamagedCheckpoint", "LastGoodState", "Resumable", "capture_rng",
           "config_digest", "latest_checkpoint", "latest_intact_checkpoint", "load_checkpoint", "restore_rng",
           "save_checkpoint"]

FORMAT = "trainwell-checkpoint/1"
# Write errors that a retry cannot mend (a read-only or forbidden place): reported at once, not retried
_FINAL = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_STEP_FILE = re.compile(r"^step-(\d+)\.safetensors$")


class CheckpointError(TrainwellError):
    """A checkpoint that cannot be written or must not be loaded."""


class DamagedCheckpoint(CheckpointError):
    """A file that is not an intact checkpoint (truncated, corrupt, foreign); ``why`` says how, without the path."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} {why}")
        self.path, self.why = path, why


def config_digest(config_yaml: str) -> str:
    return hashlib.sha256(config_yaml.encode()).hexdigest()


# ----------------------------------------------------------------------------- state <-> (json, tensors)

_SCALARS = (bool, int, float, str)


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], copy: bool = True,
             buffers: dict[str, torch.Tensor] | None = None) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = _to_host(obj.detach(), key, buffers) if copy else obj.detach().to("cpu").contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).astype(np.int64 if obj.dtype.kind in "iu"
                                                                          else obj.dtype))
        return {"__ndarray__": key, "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        if all(type(k) is str for k in obj) and all(v is None or type(v) in _SCALARS for v in obj.values()):
            return {"__dict__": obj}  # plain records (the history): JSON as they are, no walk
        return {"__map__": [[k, _flatten(v, tensors, copy, buffers)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, copy, buffers) for v in obj]}
    if isinstance(obj, list):
        if all(v is None or type(v) in _SCALARS for v in obj):
            return obj  # a list of numbers (the doctor's windows): JSON as it is, encoded before training goes on
        return [_flatten(v, tensors, copy, buffers) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(f"cannot checkpoint a value of type {type(obj).__name__}")


def _to_host(t: torch.Tensor, key: str, buffers: dict[str, torch.Tensor] | None) -> torch.Tensor:
    """A host copy of ``t``: into ``buffers[key]`` when it has the same shape and dtype (reused between saves).

    A CUDA tensor is copied without waiting (into pinned memory, as
    ``torch.distributed.checkpoint.async_save`` does): the copy is queued on the
    device's stream, and the writer waits for it (:func:`_copies_done`) before reading.
    """
    if buffers is None:
        return t.to("cpu", copy=True).contiguous()
    buf = buffers.get(key)
    if buf is None or buf.shape != t.shape or buf.dtype != t.dtype:
        buf = torch.empty(t.shape, dtype=t.dtype, pin_memory=t.is_cuda)
        buffers[key] = buf
    return buf.copy_(t, non_blocking=t.is_cuda)


def _copies_done(devices: set[torch.device]) -> list[Any]:
    """Events marking, on each device's stream, the end of the copies queued so far (none on the CPU)."""
    events = []
    for device in devices:
        if device.type == "cuda":
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(device))
            events.append(event)
    return events


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy().astype(obj["dtype"])
        if "__dict__" in obj:
            return dict(obj["__dict__"])
        if "__map__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__map__"]}
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
    return obj


def _crc(state_json: str, tensors: dict[str, torch.Tensor]) -> str:
    crc = zlib.crc32(state_json.encode())
    for key in sorted(tensors):
        t = tensors[key]
        if t.numel():
            crc = zlib.crc32(t.reshape(-1).view(torch.uint8).numpy(), crc)
    return f"{crc:08x}"


# ----------------------------------------------------------------------------- files

def _prepare(state: dict[str, Any], copy: bool = True, buffers: dict[str, torch.Tensor] | None = None
             ) -> tuple[str, dict[str, torch.Tensor]]:
    """Encode ``state`` as JSON plus its tensors; with ``copy``, a snapshot that training can run past.

    With ``buffers``, copies go into those host tensors, kept between saves (see :func:`_to_host`).
    """
    tensors: dict[str, torch.Tensor] = {}
    return json.dumps(_flatten(state, tensors, copy, buffers)), tensors


def save_checkpoint(path: str | Path, state: dict[str, Any] | tuple[str, dict[str, torch.Tensor]],
                    config_sha256: str) -> Path:
    """Write ``state`` (nested dicts, lists, tuples, numbers, strings, tensors) to ``path`` atomically.

    ``state`` may also be a snapshot made by ``_prepare``.
    """
    state_json, tensors = state if isinstance(state, tuple) else _prepare(state, copy=False)  # written now
    metadata = {"format": FORMAT, "config_sha256": config_sha256, "state": state_json,
                "crc32": _crc(state_json, tensors)}
    return atomic_save_safetensors(Path(path), tensors, metadata)


def load_checkpoint(path: str | Path, config_sha256: str | None = None) -> dict[str, Any]:
    """Read a checkpoint, refusing anything that is not an intact trainwell checkpoint of this config.

    Raises:
        DamagedCheckpoint: truncated, corrupt or foreign (a :class:`CheckpointError`).
        CheckpointError: missing, or from another config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        meta, tensors = read_safetensors(path)
    except UnreadableFile as err:
        raise DamagedCheckpoint(path, f"is not a trainwell checkpoint: not a readable safetensors file ({err}); "
                                      "nothing in it was run") from None
    if meta.get("format") != FORMAT:
        raise DamagedCheckpoint(path, f"is not a trainwell checkpoint (format {meta.get('format')!r})")
    if _crc(meta.get("state", ""), tensors) != meta.get("crc32"):
        raise DamagedCheckpoint(path, "is corrupt: its checksum does not match its contents")
    if config_sha256 is not None and meta.get("config_sha256") != config_sha256:
        raise CheckpointError(f"{path} was written by a run with another config; "
                              "resume with the run directory's own config.yaml")
    try:
        return _unflatten(json.loads(meta["state"]), tensors)
    except (KeyError, ValueError, TypeError) as err:
        raise DamagedCheckpoint(path, f"is corrupt: {err}") from None


def _step_files(directory: Path) -> list[Path]:
    """The step checkpoints in ``directory``, the highest step first."""
    if not directory.is_dir():
        return []
    steps = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(steps, reverse=True)]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The checkpoint of the highest step in ``directory`` (None if there is none)."""
    steps = _step_files(Path(directory))
    return steps[0] if steps else None


@dataclass
class Resumable:
    """The checkpoint a resume starts from: its path and state, and the newer files skipped as damaged."""

    path: Path
    state: dict[str, Any]
    skipped: list[DamagedCheckpoint]

    def set_aside(self) -> list[Path]:
        """Rename each skipped file to ``NAME.damaged``: kept, but never again taken for a checkpoint (nor pruned
        in place of an intact one). Returns the new paths."""
        moved = []
        for damaged in self.skipped:
            target = damaged.path.with_name(damaged.path.name + ".damaged")
            try:
                os.replace(damaged.path, target)
            except OSError as err:
                raise CheckpointError(f"cannot rename the damaged checkpoint {damaged.path} to {target.name}: "
                                      f"{err.strerror}") from None
            moved.append(target)
        return moved

    def fallback_line(self) -> str:
        """One line saying which file(s) were damaged and where the run goes on from ('' if none was)."""
        if not self.skipped:
            return ""
        first = self.skipped[0]
        others = f" (and {len(self.skipped) - 1} more)" if len(self.skipped) > 1 else ""
        t = self.state["trainer"]
        return (f"checkpoint {first.path.name} is damaged ({first.why.removeprefix('is ')}){others}; "
                f"kept as {first.path.name}.damaged; resuming from {self.path.name} (epoch {t['epoch']}, "
                f"step {t['step']}), the newest intact checkpoint")


def latest_intact_checkpoint(directory: str | Path, config_sha256: str | None = None) -> Resumable | None:
    """The newest checkpoint in ``directory`` that loads, skipping damaged ones (truncated, corrupt, foreign).

    Step files are tried from the highest step down, then ``best.safetensors``
    (a whole state too). A file from another config is not skipped: it is
    refused, as by :func:`load_checkpoint`.

    Returns:
        A :class:`Resumable`, or None when ``directory`` holds no checkpoint at all.

    Raises:
        CheckpointError: every checkpoint is damaged (one line naming the newest), or one is of another config.
    """
    directory = Path(directory)
    candidates = [*_step_files(directory), *([directory / "best.safetensors"]
                                              if (directory / "best.safetensors").is_file() else [])]
    if not candidates:
        return None
    skipped: list[DamagedCheckpoint] = []
    for path in candidates:
        try:
            return Resumable(path, load_checkpoint(path, config_sha256), skipped)
        except DamagedCheckpoint as err:
            skipped.append(err)
    raise CheckpointError(f"no intact checkpoint in {directory} to resume from: the newest, {skipped[0]}"
                          + (f"; the {len(skipped) - 1} other(s) are damaged too" if len(skipped) > 1 else ""))


# ----------------------------------------------------------------------------- random states

def capture_rng() -> dict[str, Any]:
    """Every random state a run draws from: python, numpy, torch CPU and CUDA."""
    version, internal, gauss = random.getstate()
    # python's 625 state words as one array: one tensor in the file, not 625 JSON numbers
    return {"python": (version, np.array(internal, dtype=np.int64), gauss), "numpy": np.random.get_state(),
            **torch_rng()}


def torch_rng() -> dict[str, Any]:
    """Torch's random states only (CPU and CUDA): what dropout and initialisation draw from; cheap to take."""
    return {"torch": torch.get_rng_state(), **({"cuda": torch.cuda.get_rng_state_all()}
                                               if torch.cuda.is_available() and torch.cuda.is_initialized() else {})}


def restore_rng(state: dict[str, Any]) -> None:
    if "python" in state:  # all of capture_rng's, or torch_rng's only
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(np.asarray(internal).tolist()), gauss))
        np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- the callbacks

class LastGoodState(Callback):
    """Keep, in memory, the training state of the epoch with the lowest finite training loss so far.

    This is the "last good state" a repair goes on from (``doctor.repair``):
    when a run is stopped for a problem that a change of the optimiser's
    settings fixes (a learning rate too high, oscillation, divergence,
    exploding gradients), training continues from here with the new settings
    instead of starting over. An epoch whose end a finding interrupted is
    never kept (the doctor stops the loop before this callback runs: put it
    after the doctor). One copy of the state is held.

    Args:
        without: callback types whose state is not kept (they start afresh when training goes on).

    Attributes:
        state: the kept state (model, optimizer and loop state dicts, tensors copied, and torch's random
            states: the ones a training loop draws from), or None before the first kept epoch.
        epoch: the epoch it ends (from 1), or None.
        train_loss: its training loss, and ``first_train_loss`` the first epoch's.
    """

    def __init__(self, without: tuple[type, ...] = ()) -> None:
        self.without = without
        self.state: dict[str, Any] | None = None
        self.epoch: int | None = None
        self.train_loss = math.inf
        self.first_train_loss: float | None = None

    def on_epoch_end(self, trainer) -> None:
        loss = trainer.logs.get("train_loss")
        if loss is None or not math.isfinite(loss):
            return
        if self.first_train_loss is None:
            self.first_train_loss = loss
        if loss <= self.train_loss:
            loop = trainer.state_dict(self.without)
            history = loop.pop("history")  # finished epochs' logs are not changed again: the list is copied
            self.state = _copied({"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                                  "trainer": loop, "rng": torch_rng()})  # state_dicts share the live tensors
            self.state["trainer"]["history"] = list(history)
            self.epoch, self.train_loss = trainer.epoch, loss


def _copied(state: Any) -> Any:
    """The state with its tensors and arrays copied and its containers new (the rest is immutable)."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, np.ndarray):
        return state.copy()
    if isinstance(state, dict):
        return {k: _copied(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_copied(v) for v in state)
    return state


class Checkpoint(Callback):
    """Write the whole training state every N steps and/or epochs, and on the best score.

    A checkpoint holds the model, the optimizer, the trainer's position (epoch,
    step, place in the epoch's shuffled order, running sums, history), every
    stateful callback (schedulers included) and all random states, so that a
    resumed run ends bit-identical to one never interrupted.

    Args:
        directory: where ``step-NNNNNNNNN.safetensors`` and ``best.safetensors`` go.
        config_sha256: digest of the run's resolved config (stored, checked on load).
        every_steps, every_epochs: how often (None: never on that count).
        keep: how many of the latest step checkpoints to keep (the best is kept too).
        best: also keep ``best.safetensors``, written when ``monitor`` improves.
        monitor: a history key, lower is better.
        retries: attempts per write before giving up (a full disk may free up).
        background: write in a background thread (the state is snapshotted first,
            so training goes on while the file is written and fsync'ed; the
            next checkpoint, an interruption or the end of training waits for it).
    """

    def __init__(self, directory: str | Path, config_sha256: str, *, every_steps: int | None = None,
                 every_epochs: int | None = 1, keep: int = 2, best: bool = True, monitor: str = "val_loss",
                 retries: int = 3, retry_wait: float = 1.0, background: bool = True) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.config_sha256 = config_sha256
        self.every_steps, self.every_epochs, self.keep = every_steps, every_epochs, keep
        self.best, self.monitor, self.retries, self.retry_wait = best, monitor, retries, retry_wait
        self.background = background
        self.tracker = MetricTracker(monitor)
        self.last_path: Path | None = None
        self._writer: threading.Thread | None = None  # one thread for the fit, fed by a queue
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._in_flight: threading.Event | None = None  # set once the write handed to the writer is done
        self._error: BaseException | None = None
        self._link_best: Path | None = None  # make best.safetensors a link to this file once written
        self._buffers: dict[str, torch.Tensor] = {}  # host copies of the state's tensors, reused between saves

    def on_fit_start(self, trainer) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(".*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)

    def on_batch_end(self, trainer) -> None:
        if self.every_steps and trainer.step % self.every_steps == 0:
            self.save(trainer)

    def on_epoch_end(self, trainer) -> None:
        improved = self.tracker.update(trainer.logs)
        written = None
        if self.every_epochs and trainer.epoch % self.every_epochs == 0:
            written = self.save(trainer)
        if self.best and improved:
            if written is not None:  # the same state: link the file instead of writing it twice
                self._link_best = written
            else:
                self.save(trainer, self.directory / "best.safetensors")

    def snapshot(self, trainer) -> dict[str, Any]:
        return {"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                "trainer": trainer.state_dict(), "rng": capture_rng()}

    def on_fit_end(self, trainer) -> None:
        """The end of the run (or an error ending it) waits for the write in flight."""
        try:
            self.wait()
        finally:
            self._stop_writer()
            self._buffers = {}  # the host copy of the state is not held past the fit

    def wait(self) -> None:
        """Block until the checkpoint being written is on disk; raise its error if it failed."""
        if self._in_flight is not None:
            self._in_flight.wait()
            self._in_flight = None
        if self._error is not None:
            error, self._error = self._error, None
            self._link_best = None  # the file it was to link was not written: the old best stays
            raise error
        if self._link_best is not None:
            source, self._link_best = self._link_best, None
            best = self.directory / "best.safetensors"
            tmp = best.with_name(f".best.{os.getpid()}.tmp")
            try:
                tmp.unlink(missing_ok=True)
                try:
                    os.link(source, tmp)  # the same bytes, not written twice
                except OSError as err:
                    if err.errno in DISK_ERRORS and err.errno != errno.EPERM:  # EPERM: links not supported
                        raise
                    shutil.copyfile(source, tmp)  # no hard links on this file system
                os.replace(tmp, best)  # atomic swap: the old best stays until the new one is in place
            except OSError as err:
                tmp.unlink(missing_ok=True)
                raise CheckpointError(f"cannot write checkpoint {best}: {err.strerror or err}; "
                                      "earlier checkpoints are intact") from None

    def save(self, trainer, path: Path | None = None, *, wait: bool = False) -> Path:
        """Snapshot the state now and write it (in the background unless ``wait``).

        The snapshot is taken on the calling (training) thread: the state's
        tensors are copied to host buffers kept between saves, its other values
        encoded as JSON, so training can go on changing the live state. The
        file is then serialised, checksummed, fsync'ed and renamed on a writer
        thread. A write still in flight is waited for first (and its error, if
        it failed, raised here); ``wait=True`` (an interruption) writes on this
        thread and returns once the file is on disk.

        Raises:
            CheckpointError: this write, or the previous background one, failed
                (one line naming the file and the cause; earlier checkpoints are intact).
        """
        self.wait()
        path = path or self.directory / f"step-{trainer.step:09d}.safetensors"
        if not self.background or wait:  # written before training moves on: the live tensors, no copy
            self._write(path, _prepare(self.snapshot(trainer), copy=False), [])
            self.wait()
            return path
        state = self.snapshot(trainer)
        snapshot = _prepare(state, buffers=self._buffers)
        events = _copies_done({t.device for t in (*trainer.model.parameters(), *trainer.model.buffers())}
                              if torch.cuda.is_initialized() else set())
        if self._writer is None:  # started once: starting a thread per save costs ~0.5 ms (and more when busy)
            self._writer = threading.Thread(target=self._serve, daemon=True, name="trainwell-checkpoint")
            self._writer.start()
        self._in_flight = threading.Event()
        self._jobs.put((path, snapshot, events, self._in_flight))
        return path

    def _serve(self) -> None:
        """The writer thread: write each snapshot handed over, until told to stop (None)."""
        while (job := self._jobs.get()) is not None:
            path, snapshot, events, done = job
            try:
                self._write(path, snapshot, events)
            finally:
                done.set()

    def _stop_writer(self) -> None:
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join()
            self._writer = None

    def _write(self, path: Path, snapshot: tuple[str, dict[str, torch.Tensor]], events: list[Any]) -> None:
        for event in events:  # copies from a GPU queued by the snapshot
            event.synchronize()
        for attempt in range(1, self.retries + 1):
            try:
                save_checkpoint(path, snapshot, self.config_sha256)
                break
            except OSError as err:  # the file system's refusal, with its errno (io turns safetensors' into one)
                if attempt == self.retries or err.errno in _FINAL:
                    self._error = CheckpointError(f"cannot write checkpoint {path}: {err.strerror or err}; "
                                                  "earlier checkpoints are intact")
                    return
                time.sleep(self.retry_wait)  # a full disk may free up
            except Exception as err:  # noqa: BLE001 - raised on the training thread by wait(), in one line
                self._error = CheckpointError(f"cannot write checkpoint {path}: {type(err).__name__}: {err}; "
                                              "earlier checkpoints are intact")
                return
        if path.name.startswith("step-"):
            self.last_path = path
            self._prune()

    def _prune(self) -> None:
        steps = sorted((int(m.group(1)), p) for p in self.directory.iterdir() if (m := _STEP_FILE.match(p.name)))
        for _, old in steps[:-self.keep]:
            old.unlink(missing_ok=True)

    def state_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
