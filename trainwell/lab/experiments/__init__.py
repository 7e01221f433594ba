"""The lab's experiments, one file each; :data:`EXPERIMENTS` maps each name to its :class:`Experiment`."""

from trainwell.lab.base import Experiment
from trainwell.lab.experiments import activation_derivatives, init_deep_relu, init_schemes

_MODULES = (activation_derivatives, init_schemes, init_deep_relu)

EXPERIMENTS: dict[str, Experiment] = {m.EXPERIMENT.name: m.EXPERIMENT for m in _MODULES}

__all__ = ["EXPERIMENTS"]
