"""The lab's experiments, one file each; :data:`EXPERIMENTS` maps each name to its :class:`Experiment`."""

from trainwell.lab.base import Experiment
from trainwell.lab.experiments import adam_bias_correction, activation_derivatives, dead_relu, dropout_scaling, init_deep_relu, init_schemes, saturation

_MODULES = (activation_derivatives, init_schemes, init_deep_relu, dead_relu, saturation, dropout_scaling, adam_bias_correction)

EXPERIMENTS: dict[str, Experiment] = {m.EXPERIMENT.name: m.EXPERIMENT for m in _MODULES}

__all__ = ["EXPERIMENTS"]
