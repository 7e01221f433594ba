"""The training loop (seed 004's process): the trainer, its callbacks and checkpoints.

Nothing here knows trainwell's config or the doctor: the loop trains any
PyTorch model with any optimizer and loss, and callbacks steer it.
"""

from trainwell.loop.augment import Augment
from trainwell.loop.callbacks import (EVENTS, Callback, CancelBatch, CancelEpoch, CancelFit, EarlyStopping,
                                      GradientClipping, HistoryFile, MetricTracker, ProgressBar, StopAtTarget)
from trainwell.loop.checkpoint import Checkpoint, CheckpointError, LastGoodState, load_checkpoint, save_checkpoint
from trainwell.loop.schedule import LRSchedule, build_schedule
from trainwell.loop.tensorboard import TensorBoardLogger, require_tensorboard
from trainwell.loop.trainer import Trainer, evaluate

__all__ = ["EVENTS", "Augment", "Callback", "CancelBatch", "CancelEpoch", "CancelFit", "Checkpoint",
           "CheckpointError", "EarlyStopping", "GradientClipping", "HistoryFile", "LRSchedule", "LastGoodState",
           "MetricTracker", "ProgressBar", "StopAtTarget", "TensorBoardLogger", "Trainer", "build_schedule", "evaluate",
           "load_checkpoint", "require_tensorboard", "save_checkpoint"]
