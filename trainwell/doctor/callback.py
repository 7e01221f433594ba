"""The doctor inside trainwell's trainer (``doctor.enabled``, on by default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainwell.doctor.doctor import Doctor, Thresholds
from trainwell.doctor.findings import Finding
from trainwell.train.callbacks import Callback, CancelFit

__all__ = ["DoctorCallback"]


class DoctorCallback(Callback):
    """Runs a :class:`Doctor` on the trainer's model and optimizer.

    It observes every step after the gradients are computed (and clipped,
    when clipping is on: what the update will use) and every epoch's logs.
    A NaN loss stops the fit before the update would spread it into the
    weights, so the model keeps its last finite parameters.

    Args:
        every: measure gradients and activations every N steps.
        on_finding: called with each new finding (printing).
        thresholds: the rules' thresholds.
    """

    def __init__(self, every: int = 10, on_finding: Callable[[Finding], None] | None = None,
                 thresholds: Thresholds | None = None) -> None:
        self.every, self.on_finding, self.thresholds = every, on_finding, thresholds
        self.doctor: Doctor | None = None
        self._pending: dict[str, Any] | None = None

    def on_fit_start(self, trainer) -> None:
        self.doctor = Doctor(trainer.model, trainer.optimizer, every=self.every, thresholds=self.thresholds,
                             on_finding=self.on_finding)
        if self._pending is not None:
            self.doctor.load_state_dict(self._pending)
            self._pending = None

    def on_after_backward(self, trainer) -> None:
        self.doctor.observe(trainer.loss, inputs=trainer.xb, targets=trainer.yb)
        if self.doctor.has("nan_loss"):
            raise CancelFit

    def on_epoch_end(self, trainer) -> None:
        logs = trainer.logs
        self.doctor.end_epoch(train_loss=logs.get("train_loss"), val_loss=logs.get("val_loss"),
                              train_acc=logs.get("train_accuracy"), val_acc=logs.get("val_accuracy"))

    def on_fit_end(self, trainer) -> None:
        if self.doctor is not None:
            self.doctor.close()

    @property
    def findings(self) -> list[Finding]:
        return [] if self.doctor is None else self.doctor.findings

    def state_dict(self) -> dict[str, Any]:
        return {} if self.doctor is None else self.doctor.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.doctor is not None:
            self.doctor.load_state_dict(state)
        else:
            self._pending = state
