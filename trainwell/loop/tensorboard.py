"""TensorBoard logging of a fit: each epoch's scalars, per-layer histograms, and text (the doctor's findings).

It writes with ``torch.utils.tensorboard``, which needs the ``tensorboard``
extra (``pip install 'trainwell[tensorboard]'``); TensorBoard is imported only
when a logger is made, and without it that raises one line saying so.

The x-axis is the update step (``trainer.step``, the ``step`` of
``history.jsonl``), so that an epoch's points and a finding made at some
update line up. A fit that starts from a saved state (a resumed run, a repair
that goes on) writes to the same directory and hides what was written there
after that state; a fit from scratch in a used directory hides all of it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainwell.errors import TrainwellError
from trainwell.loop.callbacks import Callback

if TYPE_CHECKING:
    from trainwell.loop.trainer import Trainer

__all__ = ["MISSING_TENSORBOARD", "TensorBoardLogger", "require_tensorboard"]

MISSING_TENSORBOARD = "log.tensorboard needs TensorBoard: pip install 'trainwell[tensorboard]'"

_EVENTS = "events.out.tfevents."


def require_tensorboard() -> type:
    """``torch.utils.tensorboard.SummaryWriter``; without TensorBoard, a :class:`TrainwellError` in one line."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # not installed, or older than torch accepts: the extra's install fixes both
        raise TrainwellError(MISSING_TENSORBOARD) from None
    return SummaryWriter


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a history key: ``train_loss`` -> ``loss/train``, ``val_accuracy`` ->
    ``accuracy/val`` (train and validation on one chart), other keys as they are (``lr``, ``seconds``)."""
    for split in ("train", "val"):
        if key.startswith(f"{split}_"):
            return f"{key[len(split) + 1:]}/{split}"
    return key


class TensorBoardLogger(Callback):
    """Writes a fit to TensorBoard event files in ``log_dir``.

    At each epoch's end it writes:

    * every number of the epoch's logs as a scalar (``loss/train``, ``loss/val``,
      ``accuracy/train``, ``accuracy/val``, ``lr``, ``seconds``); NaN and
      infinities are written as they are;
    * with ``histograms``, for every weight of the model (each parameter named
      ``weight*``: one per weighted layer), a histogram of its values
      (``weights/NAME``) and of its gradient from the epoch's last update
      (``gradients/NAME``). Histograms hold finite values only: the count of
      non-finite ones is the scalar ``nonfinite/weights/NAME`` (or
      ``nonfinite/gradients/NAME``), written when there are any.

    :meth:`text` adds a line of text (the run layer writes each of the
    doctor's findings under ``doctor/findings``). The files are flushed at
    every epoch's end and closed at the fit's end.

    Each fit's file starts a session (``SummaryWriter``'s ``purge_step``): one
    that starts at update S > 0 hides what an earlier fit wrote to ``log_dir``
    after S, and one that starts at 0 hides all of it. So a resumed run shows
    each step once, and a repaired one its last attempt.

    Args:
        log_dir: the directory of the event files (made when the fit starts).
        histograms: write the per-layer histograms.

    Raises:
        TrainwellError: when TensorBoard is not installed (at construction).
    """

    def __init__(self, log_dir: str | Path, histograms: bool = True) -> None:
        self._writer_class = require_tensorboard()
        self.log_dir = Path(log_dir)
        self.histograms = histograms
        self.writer: Any = None
        self._step = 0
        self._pending: list[tuple[str, str, int | None]] = []  # texts given before the fit started
        self._closed = False

    # ------------------------------------------------------------------ events

    def on_fit_start(self, trainer: Trainer) -> None:
        self._step = trainer.step
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _after_in_name_order(_event_files(self.log_dir))
        # every file starts a session (TensorBoard's server takes the first one it reads as the start, and each
        # later one as a restart that hides the points at and after its step)
        purge = trainer.step + 1 if trainer.step else 0
        self.writer = self._writer_class(log_dir=str(self.log_dir), purge_step=purge)
        self._closed = False
        pending, self._pending = self._pending, []
        for tag, text, step in pending:
            self.text(tag, text, step)

    def on_epoch_end(self, trainer: Trainer) -> None:
        step = self._step = trainer.step
        for key, value in trainer.logs.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(scalar_tag(key), value, global_step=step)
        if self.histograms:
            for name, p in trainer.model.named_parameters():
                if name.rsplit(".", 1)[-1].startswith("weight"):
                    self._histogram(f"weights/{name}", p, step)
                    if p.grad is not None:
                        self._histogram(f"gradients/{name}", p.grad, step)
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None and not self._closed:
            self.writer.close()
            self._closed = True

    # ------------------------------------------------------------------ text

    def text(self, tag: str, text: str, step: int | None = None) -> None:
        """Write ``text`` under ``tag`` at update ``step`` (None: the latest step seen; before the fit
        starts, the step it starts from). Given after the fit's end, it is written to a new file."""
        if self.writer is None:
            self._pending.append((tag, text, step))
            return
        self.writer.add_text(tag, text, global_step=self._step if step is None else step)
        if self._closed:  # the writer reopens a file for it: close that one too
            self.writer.close()
        else:
            self.writer.flush()  # rare and what a reader looks for: on disk now

    def _histogram(self, tag: str, values: Any, step: int) -> None:
        values = values.detach()
        finite = values.isfinite()
        bad = values.numel() - int(finite.sum())
        if bad:
            self.writer.add_scalar(f"nonfinite/{tag}", bad, global_step=step)
            values = values[finite]
        if values.numel():
            self.writer.add_histogram(tag, values.float().cpu(), global_step=step)


def _event_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.iterdir() if p.name.startswith(_EVENTS) and p.is_file())


def _after_in_name_order(earlier: list[Path]) -> None:
    """TensorBoard reads a directory's event files in name order, and a file's name starts with the second
    it was opened: a new file opened in the same second as the latest one could be read before it (and
    its purge of stale points then undone). Wait for the next second (under one); only a repair or a
    resume within a second of the last attempt's start waits."""
    stamps = [int(p.name[len(_EVENTS):].split(".", 1)[0]) for p in earlier
              if p.name[len(_EVENTS):].split(".", 1)[0].isdigit()]
    now = time.time()
    if stamps and max(stamps) == math.floor(now):
        time.sleep(math.floor(now) + 1.01 - now)
