"""Ctrl-C and SIGTERM during a run: checkpoint, then stop with :class:`Interrupted`.

A library leaves the process's signal handlers alone: :func:`trainwell.train`
installs these only with ``handle_signals=True`` (the ``trainwell`` command
does), and puts the previous handlers back when it returns.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from trainwell.loop import Callback, Checkpoint, Trainer

__all__ = ["Interrupted", "SignalGuard", "StopOnSignal"]


class Interrupted(Exception):
    """Training stopped on SIGINT or SIGTERM after writing a checkpoint; ``trainwell train --resume`` continues it."""

    def __init__(self, signum: int, run_dir: Path, checkpoint: Path | None, epoch: int, step: int) -> None:
        self.signum, self.run_dir, self.checkpoint, self.epoch, self.step = signum, run_dir, checkpoint, epoch, step
        name = signal.Signals(signum).name
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint (checkpoints are off)"
        super().__init__(f"training interrupted by {name} at epoch {epoch}, step {step}; {saved}\n"
                         f"resume with: trainwell train --resume {run_dir}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class SignalGuard:
    """First SIGINT/SIGTERM: ask the loop to stop after the current step. Second: stop at once.

    Args:
        enabled: install the handlers (only from the main thread); when False
            the guard never fires and the process's handlers stay as they are.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # the second one: no more waiting
            self.__exit__()
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class StopOnSignal(Callback):
    """Checks the guard after every step and epoch: checkpoint, then raise :class:`Interrupted`."""

    def __init__(self, guard: SignalGuard, checkpoint: Checkpoint | None, run_dir: Path) -> None:
        self.guard, self.checkpoint, self.run_dir = guard, checkpoint, run_dir

    def _check(self, trainer: Trainer) -> None:
        if self.guard.signum is None:
            return
        path = self.checkpoint.save(trainer, wait=True) if self.checkpoint else None
        raise Interrupted(self.guard.signum, self.run_dir, path, trainer.epoch, trainer.step)

    on_batch_end = _check
    on_epoch_end = _check
