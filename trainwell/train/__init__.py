"""Training: the loop, its callbacks and whole runs."""

from trainwell.train.callbacks import (EVENTS, Callback, CancelBatch, CancelEpoch, CancelFit, GradientClipping,
                                       HistoryFile, ProgressBar)
from trainwell.train.run import Run, evaluate_run, load_model, save_model, train
from trainwell.train.trainer import Trainer, evaluate

__all__ = ["EVENTS", "Callback", "CancelBatch", "CancelEpoch", "CancelFit", "GradientClipping", "HistoryFile",
           "ProgressBar", "Run", "Trainer", "evaluate", "evaluate_run", "load_model", "save_model", "train"]
