"""The lab's experiments, one file each; :data:`EXPERIMENTS` maps each name to its :class:`Experiment`.

Every module of this package that defines ``EXPERIMENT`` is one experiment, so a new experiment is
one new file; :data:`EXPERIMENTS` lists them by name.
"""

import importlib
import pkgutil

from trainwell.lab.base import Experiment


def _discover() -> dict[str, Experiment]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        experiment = importlib.import_module(f"{__name__}.{info.name}").EXPERIMENT
        if experiment.name != info.name:
            raise ValueError(f"trainwell/lab/experiments/{info.name}.py names its experiment {experiment.name!r}")
        found[experiment.name] = experiment
    return found


EXPERIMENTS: dict[str, Experiment] = _discover()

__all__ = ["EXPERIMENTS"]
