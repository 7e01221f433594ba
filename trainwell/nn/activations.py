"""Activations of seeds 001-003, by name, with what the doctor needs to know.

Each entry's metadata says:
  * ``grad_bound``: the largest value of the derivative (sigmoid 0.25, tanh 1,
    ReLU 1) - a product of many factors below 1 is the vanishing gradient;
  * ``gain``: the name ``torch.nn.init.calculate_gain`` knows, so He/Xavier
    initialisation picks the right scale for the layer's activation;
  * ``saturates``: whether units can get stuck where the derivative is ~0
    (sigmoid/tanh at their limits) or ``dies`` (ReLU at 0 for every input).
"""

from __future__ import annotations

from torch import nn

from trainwell.registry import Registry

__all__ = ["ACTIVATIONS", "make_activation"]

ACTIVATIONS: Registry = Registry("activation")

ACTIVATIONS.add("relu", nn.ReLU, "max(0, x): derivative 1 for x > 0, sparse, units can die",
                grad_bound=1.0, gain="relu", saturates=False, dies=True)
ACTIVATIONS.add("leaky_relu", lambda: nn.LeakyReLU(0.01),
                "x for x > 0, x/a otherwise (slope 0.01): no dead units",
                grad_bound=1.0, gain="leaky_relu", saturates=False, dies=False)
ACTIVATIONS.add("sigmoid", nn.Sigmoid, "1/(1+e^-x): derivative at most 0.25, saturates at 0 and 1",
                grad_bound=0.25, gain="sigmoid", saturates=True, dies=False)
ACTIVATIONS.add("tanh", nn.Tanh, "tanh(x): derivative at most 1, saturates at -1 and 1",
                grad_bound=1.0, gain="tanh", saturates=True, dies=False)
ACTIVATIONS.add("elu", nn.ELU, "x for x > 0, e^x - 1 otherwise: smooth, no dead units",
                grad_bound=1.0, gain="relu", saturates=False, dies=False)
ACTIVATIONS.add("selu", nn.SELU, "scaled ELU that self-normalises activations",
                grad_bound=1.0507 * 1.6733, gain="selu", saturates=False, dies=False)
ACTIVATIONS.add("gelu", nn.GELU, "x * Phi(x): smooth ReLU of transformers",
                grad_bound=1.13, gain="relu", saturates=False, dies=False)
ACTIVATIONS.add("identity", nn.Identity, "no nonlinearity (a linear model stays linear)",
                grad_bound=1.0, gain="linear", saturates=False, dies=False)


def make_activation(name: str) -> nn.Module:
    """Build the activation module registered under ``name``."""
    return ACTIVATIONS.get(name)()
