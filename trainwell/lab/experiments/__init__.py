"""The lab's experiments, one file each; :data:`EXPERIMENTS` maps each name to its :class:`Experiment`."""

from trainwell.lab.base import Experiment
from trainwell.lab.experiments import (activation_derivatives, adam_bias_correction, ce_vs_mse, dead_relu,
                                       dropout_scaling, init_deep_relu, init_schemes, l1_l2, nan_causes,
                                       normalise_range, optimizers_quadratic, saturation)

_MODULES = (activation_derivatives, init_schemes, init_deep_relu, dead_relu, saturation, dropout_scaling,
            adam_bias_correction, optimizers_quadratic, ce_vs_mse, l1_l2, normalise_range, nan_causes)

EXPERIMENTS: dict[str, Experiment] = {m.EXPERIMENT.name: m.EXPERIMENT for m in _MODULES}

__all__ = ["EXPERIMENTS"]
