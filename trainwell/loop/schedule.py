"""Learning-rate schedules (seeds 001-003): decay, warmup, reduce-on-plateau.

The schedules are torch's own (``torch.optim.lr_scheduler``); this module
builds them from a config's ``schedule`` section (read as plain attributes)
and steps them once per epoch from a callback. A
linear warmup (from ``lr / (warmup_epochs + 1)`` up to ``lr``) can precede any
of them. Per-group rates (per-layer multipliers) are kept: every schedule
scales each group's own initial rate.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import lr_scheduler as sched

from trainwell.loop.callbacks import Callback, better_direction

__all__ = ["LRSchedule", "build_schedule"]


class LRSchedule(Callback):
    """Steps a scheduler at the end of every epoch (plateau schedules read ``monitor`` from the logs)."""

    def __init__(self, scheduler: Any, *, warmup: Any = None, warmup_epochs: int = 0,
                 monitor: str = "val_loss") -> None:
        self.scheduler, self.warmup, self.warmup_epochs, self.monitor = scheduler, warmup, warmup_epochs, monitor

    def on_epoch_end(self, trainer) -> None:
        if isinstance(self.scheduler, sched.ReduceLROnPlateau):
            if self.warmup is not None and trainer.epoch <= self.warmup_epochs:
                self.warmup.step()
            elif self.monitor in trainer.logs:
                self.scheduler.step(trainer.logs[self.monitor])
        elif self.scheduler is not None:
            self.scheduler.step()

    def scale(self, factor: float) -> None:
        """Scale the rates the schedule starts from and last set by ``factor`` (the optimizer's group rates are
        the caller's to scale): the schedule keeps its place, on a rate ``factor`` times the old one."""
        for s in (self.scheduler, self.warmup):
            if s is not None:
                s.load_state_dict(_scaled(s.state_dict(), factor))

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "warmup": self.warmup.state_dict() if self.warmup is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.warmup is not None and state.get("warmup") is not None:
            self.warmup.load_state_dict(state["warmup"])
        # The optimizer stepped before the checkpoint, in the process that wrote it; torch's schedulers
        # would otherwise warn "lr_scheduler.step() before optimizer.step()" when a resume starts at an
        # epoch's end. The flag is the one torch's own step wrapper sets.
        for s in (self.scheduler, self.warmup):
            if s is not None and hasattr(s, "optimizer"):
                s.optimizer._opt_called = True


def _scaled(state: dict[str, Any], factor: float) -> dict[str, Any]:
    """A torch scheduler's state dict with its start and last rates scaled (chained schedulers' too)."""
    state = dict(state)
    for key in ("base_lrs", "_last_lr"):
        if state.get(key) is not None:
            state[key] = [lr * factor for lr in state[key]]
    if "_schedulers" in state:
        state["_schedulers"] = [_scaled(s, factor) for s in state["_schedulers"]]
    return state


def build_schedule(optimizer: torch.optim.Optimizer, cfg: Any, epochs: int) -> LRSchedule | None:
    """Build the schedule of a :class:`~trainwell.config.ScheduleConfig` for a run of ``epochs`` epochs."""
    w = cfg.warmup_epochs
    if cfg.name == "none" and w == 0:
        return None
    if cfg.name == "plateau":
        plateau = sched.ReduceLROnPlateau(optimizer, mode=better_direction(cfg.monitor), factor=cfg.factor,
                                          patience=cfg.patience, min_lr=cfg.min_lr)
        warmup = sched.LinearLR(optimizer, 1.0 / (w + 1), 1.0, total_iters=w) if w else None
        return LRSchedule(plateau, warmup=warmup, warmup_epochs=w, monitor=cfg.monitor)
    main = {
        "none": lambda: sched.ConstantLR(optimizer, factor=1.0, total_iters=0),
        "step": lambda: sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma),
        "exponential": lambda: sched.ExponentialLR(optimizer, gamma=cfg.gamma),
        "cosine": lambda: sched.CosineAnnealingLR(optimizer, T_max=max(epochs - w, 1), eta_min=cfg.min_lr),
    }[cfg.name]
    if not w:
        return LRSchedule(main())
    warmup = sched.LinearLR(optimizer, 1.0 / (w + 1), 1.0, total_iters=w)
    return LRSchedule(sched.SequentialLR(optimizer, [warmup, main()], milestones=[w]))
