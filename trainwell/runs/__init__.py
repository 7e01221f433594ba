"""The run layer: a config in, a run directory out (the whole training process, end to end).

* :mod:`~trainwell.runs.repair`     - :func:`train`, the whole run and the doctor's repairs;
* :mod:`~trainwell.runs.attempt`    - one attempt, of an explicit kind;
* :mod:`~trainwell.runs.prepare`    - the data made ready as the config says;
* :mod:`~trainwell.runs.datafile`   - the user's own data files (CSV, NPZ), read and checked;
* :mod:`~trainwell.runs.remedies`   - the doctor's remedies as config changes;
* :mod:`~trainwell.runs.directory`  - the run directory;
* :mod:`~trainwell.runs.evaluation` - a finished run's model loaded back, measured, and used to predict;
* :mod:`~trainwell.runs.signals`    - Ctrl-C and SIGTERM, when asked to handle them;
* :mod:`~trainwell.runs.one_class`  - one-class learning as a run.
"""

from trainwell.runs.directory import new_run_dir, read_run
from trainwell.runs.evaluation import evaluate_run, load_arrays, load_model, predict
from trainwell.runs.one_class import train_one_class
from trainwell.runs.prepare import configured_data
from trainwell.runs.remedies import plan_repair, repairable
from trainwell.runs.repair import Run, train
from trainwell.runs.signals import Interrupted

__all__ = ["Interrupted", "Run", "configured_data", "evaluate_run", "load_arrays", "load_model", "new_run_dir",
           "plan_repair", "predict", "read_run", "repairable", "train", "train_one_class"]
