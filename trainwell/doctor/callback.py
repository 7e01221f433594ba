"""The doctor inside trainwell's trainer (``doctor.enabled``, on by default)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from trainwell.doctor.doctor import Doctor
from trainwell.doctor.thresholds import Thresholds
from trainwell.doctor.findings import Finding
from trainwell.loop.callbacks import Callback, CancelFit, EarlyStopping

__all__ = ["DoctorCallback"]


class DoctorCallback(Callback):
    """Runs a :class:`Doctor` on the trainer's model and optimizer.

    It observes every step after the gradients are computed (and clipped,
    when clipping is on: what the update will use) and every epoch's logs.
    A NaN loss stops the fit before the update would spread it into the
    weights, so the model keeps its last finite parameters.

    With ``stop_when`` (the trainer's ``doctor.repair``), a finding for which
    it returns True ends the fit at once, so that the repaired run starts
    without spending the rest of a broken one. Overfitting is repaired in
    place instead, by early stopping from then on: the fit stops once the
    monitored metric (the validation loss unless told otherwise) has not
    improved for ``patience`` epochs, and ends with the weights of its best
    epoch however it ends.

    Args:
        every: measure gradients and activations every N steps.
        on_finding: called with each new finding (printing).
        thresholds: the rules' thresholds.
        stop_when: end the fit when a finding satisfies it.
        patience, monitor, mode, min_delta: with ``stop_when``, the early stopping that repairs
            overfitting (the trainer passes its ``early_stopping`` settings).
        record: the doctor's ``stats.jsonl`` (see :mod:`trainwell.doctor.record`).
    """

    def __init__(self, every: int = 10, on_finding: Callable[[Finding], None] | None = None,
                 thresholds: Thresholds | None = None, stop_when: Callable[[Finding], bool] | None = None,
                 patience: int = 10, monitor: str = "val_loss", mode: str = "min", min_delta: float = 0.0,
                 record: str | Path | None = None) -> None:
        self.every, self.on_finding, self.thresholds, self.stop_when = every, on_finding, thresholds, stop_when
        self.record = record
        # with stop_when: the best epoch and its weights, kept from the start; active once overfitting is found
        self._stopper = EarlyStopping(monitor, mode, min_delta, patience=patience, active=False)
        self._stopping: Finding | None = None  # the overfitting finding early stopping is repairing
        self._stopping_index: int | None = None  # the same, from a checkpoint, until the doctor is back
        self.doctor: Doctor | None = None
        self._pending: dict[str, Any] | None = None

    def on_fit_start(self, trainer) -> None:
        self.doctor = Doctor(trainer.model, trainer.optimizer, every=self.every, thresholds=self.thresholds,
                             on_finding=self.on_finding, total_steps=_planned_steps(trainer), record=self.record)
        self.doctor.forward = getattr(trainer, "forward", None)
        if self._pending is not None:
            self.doctor.load_state_dict(self._pending)
            self._pending = None
        else:  # a loop that goes on from a kept state with new settings: a new watch, from where it is
            self.doctor.go_to(trainer.step, trainer.epoch)
            _lint_and_sample(self.doctor, trainer)
        self._resolve_stopping()

    def _stop_if_asked(self, seen: int) -> None:
        if self.stop_when is not None and any(self.stop_when(f) for f in self.doctor.findings[seen:]):
            raise CancelFit

    def on_after_backward(self, trainer) -> None:
        seen = len(self.doctor.findings)
        self.doctor.observe(trainer.loss, inputs=trainer.xb, targets=trainer.yb)
        if self.doctor.has("nan_loss"):
            raise CancelFit
        self._stop_if_asked(seen)

    def on_epoch_end(self, trainer) -> None:
        logs = trainer.logs
        seen = len(self.doctor.findings)
        self.doctor.end_epoch(train_loss=logs.get("train_loss"), val_loss=logs.get("val_loss"),
                              train_acc=logs.get("train_accuracy"), val_acc=logs.get("val_accuracy"),
                              seconds=logs.get("seconds"))
        new = self.doctor.findings[seen:]
        overfit = next((f for f in new if f.symptom == "overfitting"), None)
        if self.stop_when is None:
            return
        if overfit is not None:
            self._stopping, self._stopper.active = overfit, True
            overfit.repaired = f"early stopping from epoch {logs['epoch']}"
        self._stopper.on_epoch_end(trainer)  # the best epoch's weights; once active, stops after patience
        if self._stopping is None:
            self._stop_if_asked(seen)

    def on_fit_end(self, trainer) -> None:
        planned = getattr(trainer, "epochs", None)
        if self.doctor is not None and ((isinstance(planned, int) and trainer.epoch >= planned)
                                        or getattr(trainer, "should_stop", False)):
            self.doctor.finish()  # the run ended as planned (or by its own early stopping): how far did it get
        if self._stopping is not None and self._stopper.best_state is not None:
            self._stopper.on_fit_end(trainer)  # ends with the best validation epoch's weights
            self._stopping.repaired = \
                f"early stopping from epoch {self._stopping.epoch} (patience {self._stopper.patience}): stopped " \
                f"at epoch {trainer.epoch}, weights of epoch {self._stopper.tracker.best_epoch} restored"
        if self.doctor is not None:
            self.doctor.close()

    @property
    def findings(self) -> list[Finding]:
        return [] if self.doctor is None else self.doctor.findings

    def state_dict(self) -> dict[str, Any]:
        state = {} if self.doctor is None else self.doctor.state_dict()
        if self.stop_when is not None:  # the repair's own state: best epoch, its weights, early stopping
            state = {**state, "repair": {"stopper": self._stopper.state_dict(),
                                         "stopping": self.doctor.findings.index(self._stopping)
                                         if self._stopping is not None else None}}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        repair = state.pop("repair", None)
        if self.doctor is not None:
            self.doctor.load_state_dict(state)
        else:
            self._pending = state
        if repair is not None:
            self._stopper.load_state_dict(repair["stopper"])
            self._stopping_index = repair["stopping"]
            self._resolve_stopping()

    def _resolve_stopping(self) -> None:
        if self.doctor is not None and self._stopping_index is not None:
            self._stopping, self._stopping_index = self.doctor.findings[self._stopping_index], None


def _lint_and_sample(doctor: Doctor, trainer) -> None:
    """The lint on the first batch, and the rows the end-of-run verdict judges (drawn with a generator of their own)."""
    split = getattr(trainer, "train_split", None)
    loss_fn = getattr(trainer, "loss_fn", None)
    if split is None or not len(split):
        return
    x, y = split.x, split.y
    classes = int(y.max()) + 1 if y.dim() == 1 and not y.is_floating_point() and len(y) else None
    if loss_fn is not None:
        size = getattr(trainer, "batch_size", 128)
        doctor.run_lint(loss_fn, (x[:size], y[:size]), n_classes=classes)
    if classes is not None:
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:doctor.sample_rows].to(y.device)
        doctor.keep_sample(x[pick], y[pick])


def _planned_steps(trainer) -> int | None:
    """The run's planned updates (None for a loop that does not say how many)."""
    epochs, per_epoch = getattr(trainer, "epochs", None), getattr(trainer, "steps_per_epoch", None)
    return epochs * per_epoch if isinstance(epochs, int) and isinstance(per_epoch, int) else None
