"""trainwell: train neural networks so that training goes right.

Every technique of the general training process, usable by name from Python,
a YAML config or the ``trainwell`` command.

Example:
    >>> import trainwell
    >>> run = trainwell.train({"train": {"epochs": 5}})          # doctest: +SKIP
    >>> model = trainwell.load_model(run.dir)                       # doctest: +SKIP
"""

from trainwell.config import Config, ConfigError, load_config
from trainwell.data.datasets import load_data
from trainwell.errors import TrainwellError
from trainwell.models import build_model
from trainwell.runs import Interrupted, Run, evaluate_run, load_model, train

__all__ = ["Config", "ConfigError", "Interrupted", "Run", "TrainwellError", "build_model", "evaluate_run", "load_config",
           "load_data", "load_model", "train"]
__version__ = "0.1.0"
