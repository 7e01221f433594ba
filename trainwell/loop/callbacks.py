"""Callbacks: code that runs around the stages of the training loop.

A callback implements only the events it needs; the trainer calls every
callback the same way. Callbacks steer the loop by setting
``trainer.should_stop`` or by raising one of the cancel exceptions. Callbacks
that carry state implement ``state_dict`` / ``load_state_dict`` so that a
resumed run continues exactly.

Events, in the order of seed 004's process::

    fit_start
      epoch_start                       (the data are shuffled here)
        batch_start                     (a mini-batch is loaded)
          after_loss                    (forward pass and loss computed)
          after_backward                (gradients computed, before the update)
          after_step                    (parameters updated)
        batch_end
      epoch_end                         (validation done, trainer.logs complete)
    fit_end
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainwell.loop.trainer import Trainer

__all__ = ["EVENTS", "Callback", "CancelBatch", "CancelEpoch", "CancelFit", "EarlyStopping", "GradientClipping",
           "HistoryFile", "MetricTracker", "ProgressBar", "StopAtTarget"]

EVENTS = ("fit_start", "epoch_start", "batch_start", "after_loss", "after_backward", "after_step",
          "batch_end", "epoch_end", "fit_end")


class CancelBatch(Exception):
    """Raised by a callback to skip the rest of the current batch (no update if before the step)."""


class CancelEpoch(Exception):
    """Raised by a callback to end the current epoch early (validation still runs)."""


class CancelFit(Exception):
    """Raised by a callback to stop training at once (fit_end still fires)."""


class Callback:
    """Base class: override the ``on_<event>`` methods you need."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_start(self, trainer: Trainer) -> None: ...
    def on_after_loss(self, trainer: Trainer) -> None: ...
    def on_after_backward(self, trainer: Trainer) -> None: ...
    def on_after_step(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer) -> None: ...
    def on_epoch_end(self, trainer: Trainer) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class GradientClipping(Callback):
    """Clip gradients after backward, before the update (torch.nn.utils' clip functions).

    Args:
        max_norm: rescale all gradients together so that their global L2 norm is at most this.
        value: clamp every gradient coordinate to [-value, value] (applied first).

    ``last_norm`` holds the global norm before clipping, for the doctor.
    """

    def __init__(self, max_norm: float | None = None, value: float | None = None) -> None:
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm}")
        if value is not None and not value > 0:
            raise ValueError(f"value must be > 0, got {value}")
        self.max_norm, self.value = max_norm, value
        self.last_norm: float | None = None

    def on_after_backward(self, trainer: Trainer) -> None:
        import torch

        params = [p for p in trainer.model.parameters() if p.grad is not None]
        if self.value is not None:
            torch.nn.utils.clip_grad_value_(params, self.value)
        if self.max_norm is not None:
            self.last_norm = torch.nn.utils.clip_grad_norm_(params, self.max_norm)


class HistoryFile(Callback):
    """Appends each epoch's logs to a JSON-lines file as soon as the epoch ends."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_fit_start(self, trainer: Trainer) -> None:
        self.path.touch()

    def on_epoch_end(self, trainer: Trainer) -> None:
        line = memoryview((json.dumps(trainer.logs) + "\n").encode())
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            end = os.fstat(fd).st_size
            try:
                while line:  # a write may take part of the line only
                    line = line[os.write(fd, line):]
            except OSError as err:  # a full disk: no half line is left, and the file is named (the error is not)
                os.ftruncate(fd, end)
                raise OSError(err.errno, err.strerror, str(self.path)) from None
        finally:
            os.close(fd)


class ProgressBar(Callback):
    """A rich progress bar over the whole fit, advancing per batch, with the time remaining.

    It shows the epoch and the batch within it (``epoch 3/20 batch 41/50``),
    an estimate of the time left (rich's, from the batches' recent rate), and
    the latest epoch's losses and accuracies once it ends: the training loss
    is the running mean over the epoch's batches, in training mode. Within an
    epoch the bar is updated at most once every ``refresh_interval`` seconds
    and reads nothing from the device, so a step costs one clock read.

    Args:
        description: the bar's label (the run's name).
        console: a rich ``Console`` to draw on (default: rich's, standard output).
        refresh_interval: the least time between two updates within an epoch (the end of an epoch always updates).
    """

    def __init__(self, description: str = "training", console: Any = None, refresh_interval: float = 0.1) -> None:
        self.description, self.console, self.refresh_interval = description, console, refresh_interval
        self._progress: Any = None
        self._next_update = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20),
                                  TextColumn("{task.fields[where]}"), TimeRemainingColumn(),
                                  TextColumn("{task.fields[status]}"), console=self.console, transient=False,
                                  refresh_per_second=10)
        self._progress.start()
        self._per_epoch = trainer.steps_per_epoch
        done = trainer.progress["next_batch"] if trainer.progress is not None else 0  # a resume mid-epoch
        self._task = self._progress.add_task(self.description, total=trainer.epochs * self._per_epoch,
                                             completed=trainer.epoch * self._per_epoch + done,
                                             where=self._where(trainer.epoch, done, trainer.epochs), status="")
        self._next_update = time.monotonic() + self.refresh_interval

    def _where(self, epoch: int, batch: int, epochs: int) -> str:
        """``epoch E/N batch B/M``: the epoch in progress (from 1) and the batches of it done."""
        return f"epoch {min(epoch + 1, epochs)}/{epochs} batch {batch}/{self._per_epoch}"

    def on_batch_end(self, trainer: Trainer) -> None:
        now = time.monotonic()
        if now < self._next_update:
            return
        self._next_update = now + self.refresh_interval
        batch = trainer.batch + 1
        self._progress.update(self._task, completed=trainer.epoch * self._per_epoch + batch,
                              where=self._where(trainer.epoch, batch, trainer.epochs))

    def on_epoch_end(self, trainer: Trainer) -> None:
        logs = trainer.logs
        status = f"loss {logs['train_loss']:.4f} acc {logs['train_accuracy']:.3f}"
        if "val_loss" in logs:
            status += f" | val loss {logs['val_loss']:.4f} acc {logs['val_accuracy']:.3f}"
        # trainer.epoch counts the finished epochs: the one just ended is shown complete
        self._progress.update(self._task, completed=trainer.epoch * self._per_epoch, status=status,
                              where=f"epoch {trainer.epoch}/{trainer.epochs} batch {self._per_epoch}/{self._per_epoch}")

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def better_direction(monitor: str) -> str:
    """``max`` for an accuracy, ``min`` for anything else (losses)."""
    return "max" if "accuracy" in monitor else "min"


class MetricTracker:
    """The best value of a monitored metric and how long since it improved.

    Shared by early stopping and checkpoint-on-best.

    Args:
        monitor: a key of the epoch's logs (``val_loss``, ``val_accuracy``, ...).
        mode: ``min`` (lower is better), ``max``, or ``auto``: ``max`` for accuracies, ``min`` otherwise.
        min_delta: the least change that counts as an improvement.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", min_delta: float = 0.0) -> None:
        if mode not in ("min", "max", "auto"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        if mode == "auto":
            mode = better_direction(monitor)
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.waited = 0

    def update(self, logs: dict[str, Any]) -> bool:
        """Read ``logs``; return whether the metric improved (a missing or NaN value does not)."""
        value = logs.get(self.monitor)
        better = value is not None and math.isfinite(value) and (
            self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                  else value > self.best + self.min_delta))
        if better:
            self.best, self.best_epoch, self.waited = float(value), logs.get("epoch"), 0
        else:
            self.waited += 1
        return better

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.waited = state["best"], state["best_epoch"], state["waited"]


class EarlyStopping(Callback):
    """Stop when the monitored metric has not improved for ``patience`` epochs.

    With ``restore_best`` the model ends with the weights of its best epoch,
    however training ends (stopped early, finished, or cancelled).

    Args:
        monitor, mode, min_delta: see :class:`MetricTracker`.
        patience: epochs without improvement before stopping.
        restore_best: load the best epoch's weights at the end of the fit.
        active: stop and restore only while True; an inactive one only keeps the
            best epoch and its weights (the doctor activates it on overfitting).
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", min_delta: float = 0.0, patience: int = 10,
                 restore_best: bool = True, active: bool = True) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.tracker = MetricTracker(monitor, mode, min_delta)
        self.patience, self.restore_best, self.active = patience, restore_best, active
        self.best_state: dict[str, Any] | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.tracker.update(trainer.logs):
            if self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        elif self.active and self.tracker.waited >= self.patience:
            trainer.should_stop = True
            self.stopped_epoch = trainer.epoch

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.active and self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker.state_dict(), "best_state": self.best_state,
                "stopped_epoch": self.stopped_epoch, "active": self.active}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.best_state, self.stopped_epoch = state["best_state"], state["stopped_epoch"]
        self.active = state.get("active", True)


class StopAtTarget(Callback):
    """Stop at the end of the first epoch whose monitored metric reaches ``target``.

    Time to a target accuracy (or loss) is how batch sizes and rates are compared:
    ``reached_epoch`` is that epoch (1-based, as in the history), None while not reached.

    Args:
        monitor: a key of the epoch's logs (``val_accuracy``, ``val_loss``, ...).
        target: the value to reach: ``>= target`` in mode ``max``, ``<= target`` in mode ``min``.
        mode: ``min``, ``max``, or ``auto``: ``max`` for accuracies, ``min`` otherwise.

    Example:
        >>> stop = StopAtTarget("val_accuracy", 0.9)   # Trainer(..., callbacks=[stop]); then stop.reached_epoch
    """

    def __init__(self, monitor: str = "val_accuracy", target: float = 0.9, mode: str = "auto") -> None:
        if mode not in ("min", "max", "auto"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        if not math.isfinite(target):
            raise ValueError(f"target must be a finite number, got {target}")
        self.monitor, self.target = monitor, target
        self.mode = better_direction(monitor) if mode == "auto" else mode
        self.reached_epoch: int | None = None

    def on_epoch_end(self, trainer: Trainer) -> None:
        value = trainer.logs.get(self.monitor)
        if value is None or not math.isfinite(value) or self.reached_epoch is not None:
            return
        if value >= self.target if self.mode == "max" else value <= self.target:
            self.reached_epoch = trainer.logs.get("epoch", trainer.epoch)
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"reached_epoch": self.reached_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reached_epoch = state["reached_epoch"]
