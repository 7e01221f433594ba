"""The doctor inside trainwell's trainer (``doctor.enabled``, on by default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainwell.doctor.doctor import Doctor, Thresholds
from trainwell.doctor.findings import Finding
from trainwell.train.callbacks import Callback, CancelFit, MetricTracker

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
    place instead: the fit stops and the weights of the best validation
    epoch are restored (early stopping, after the fact).

    Args:
        every: measure gradients and activations every N steps.
        on_finding: called with each new finding (printing).
        thresholds: the rules' thresholds.
        stop_when: end the fit when a finding satisfies it.
    """

    def __init__(self, every: int = 10, on_finding: Callable[[Finding], None] | None = None,
                 thresholds: Thresholds | None = None, stop_when: Callable[[Finding], bool] | None = None) -> None:
        self.every, self.on_finding, self.thresholds, self.stop_when = every, on_finding, thresholds, stop_when
        self.doctor: Doctor | None = None
        self._pending: dict[str, Any] | None = None
        self._tracker = MetricTracker("val_loss")  # with stop_when: the best epoch's weights, for overfitting
        self._best_state: dict[str, Any] | None = None

    def on_fit_start(self, trainer) -> None:
        self.doctor = Doctor(trainer.model, trainer.optimizer, every=self.every, thresholds=self.thresholds,
                             on_finding=self.on_finding)
        if self._pending is not None:
            self.doctor.load_state_dict(self._pending)
            self._pending = None

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
        if self.stop_when is not None and self._tracker.update(logs):
            self._best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        self.doctor.end_epoch(train_loss=logs.get("train_loss"), val_loss=logs.get("val_loss"),
                              train_acc=logs.get("train_accuracy"), val_acc=logs.get("val_accuracy"))
        new = self.doctor.findings[seen:]
        overfit = next((f for f in new if f.symptom == "overfitting"), None)
        if overfit is not None and self.stop_when is not None and self._best_state is not None:
            trainer.model.load_state_dict(self._best_state)
            overfit.evidence["repaired_in_place"] = f"stopped at epoch {logs['epoch']}, weights of epoch " \
                                                    f"{self._tracker.best_epoch} restored"
            trainer.should_stop = True
            return
        self._stop_if_asked(seen)

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
