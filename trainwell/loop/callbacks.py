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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainwell.loop.trainer import Trainer

__all__ = ["EVENTS", "Callback", "CancelBatch", "CancelEpoch", "CancelFit", "EarlyStopping", "GradientClipping",
           "HistoryFile", "MetricTracker", "ProgressBar"]

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
    """A rich progress bar over epochs, showing the latest losses and accuracies."""

    def __init__(self, description: str = "training") -> None:
        self.description = description
        self._progress: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                                  TimeRemainingColumn(), TextColumn("{task.fields[status]}"), transient=False)
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=trainer.epochs,
                                             completed=trainer.epoch, status="")

    def on_epoch_end(self, trainer: Trainer) -> None:
        logs = trainer.logs
        status = f"loss {logs['train_loss']:.4f} acc {logs['train_accuracy']:.3f}"
        if "val_loss" in logs:
            status += f" | val loss {logs['val_loss']:.4f} acc {logs['val_accuracy']:.3f}"
        self._progress.update(self._task, completed=logs["epoch"], status=status)

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
