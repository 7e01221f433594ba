"""Training: the loop, its callbacks and whole runs."""

from trainwell.train.callbacks import (EVENTS, Callback, CancelBatch, CancelEpoch, CancelFit, GradientClipping,
                                       HistoryFile, ProgressBar)
from trainwell.train.checkpoint import Checkpoint, CheckpointError, LastGoodState, load_checkpoint, save_checkpoint
from trainwell.train.run import Interrupted, Run, evaluate_run, load_model, save_model, train
from trainwell.train.trainer import Trainer, evaluate

__all__ = ["EVENTS", "Callback", "CancelBatch", "CancelEpoch", "CancelFit", "Checkpoint", "CheckpointError",
           "GradientClipping", "HistoryFile", "Interrupted", "LastGoodState", "ProgressBar", "Run", "load_checkpoint",
           "save_checkpoint", "Trainer", "evaluate", "evaluate_run", "load_model", "save_model", "train"]
