"""Activations of seeds 001-003, by name, with what the doctor needs to know.

Each entry's metadata says:
  * ``grad_bound``: the largest value of the derivative (sigmoid 0.25, tanh 1,
    ReLU 1) - a product of many factors below 1 is the vanishing gradient;
  * ``gain``: the name ``torch.nn.init.calculate_gain`` knows, so He/Xavier
    initialisation picks the right scale for the layer's activation;
  * ``saturated``: ``f(output) -> bool mask`` of units whose derivative is
    under 10% of its bound (sigmoid near 0 or 1, tanh near -1 or 1), or None
    where the activation does not saturate;
  * ``dead``: ``f(output) -> bool mask`` of outputs with zero derivative
    (ReLU at 0); a unit dead for every input of a batch is a dead ReLU;
  * ``width_factor``: how many inputs feed each output (maxout's k), so the
    layer before it is made ``k`` times wider.

Activations with options (``leaky_relu``'s ``slope``, ``maxout``'s ``k``)
take them as keyword arguments: ``model.activation_options: {slope: 0.1}``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trainwell.registry import Registry

__all__ = ["ACTIVATIONS", "Maxout", "make_activation", "width_factor"]

ACTIVATIONS: Registry = Registry("activation")
Mask = Callable[[torch.Tensor], torch.Tensor]


class Maxout(nn.Module):
    """Maxout (Goodfellow et al. 2013): the maximum of ``k`` linear pieces.

    The layer before it computes ``k`` pieces per unit, so features
    ``(batch, units * k, *spatial)`` become ``(batch, units, *spatial)``:
    ``h_j = max_i z_{j k + i}``. Maxout is piecewise linear and never
    saturates; ReLU is maxout of ``(z, 0)``.

    Args:
        k: pieces per unit (>= 2).
    """

    def __init__(self, k: int = 2) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 2:
            raise ValueError(f"maxout needs k >= 2 linear pieces per unit, got k={k!r}")
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, units * k, *spatial)
        features = x.shape[1]
        if features % self.k:
            raise ValueError(f"maxout with k={self.k} needs a feature count divisible by {self.k}, got {features}; "
                             f"make the layer before it {self.k} * units wide")
        return x.unflatten(1, (features // self.k, self.k)).amax(dim=2)  # (batch, units, *spatial)

    def extra_repr(self) -> str:
        return f"k={self.k}"


def _near(low: float, high: float) -> Mask:
    return lambda y: (y <= low) | (y >= high)


def _zero(y: torch.Tensor) -> torch.Tensor:
    return y <= 0


ACTIVATIONS.add("relu", nn.ReLU, "max(0, x): derivative 1 for x > 0, sparse, units can die",
                grad_bound=1.0, gain="relu", saturated=None, dead=_zero)
ACTIVATIONS.add("leaky_relu", lambda slope=0.01: nn.LeakyReLU(slope),
                "x for x > 0, slope * x otherwise (slope 0.01 = 1/a, settable): no dead units",
                grad_bound=1.0, gain="leaky_relu", saturated=None, dead=None)
# sigmoid: derivative y(1 - y) < 0.025 (a tenth of 0.25) where y < 0.026 or y > 0.974.
ACTIVATIONS.add("sigmoid", nn.Sigmoid, "1/(1+e^-x): derivative at most 0.25, saturates at 0 and 1",
                grad_bound=0.25, gain="sigmoid", saturated=_near(0.026, 0.974), dead=None)
# tanh: derivative 1 - y^2 < 0.1 where |y| > 0.949.
ACTIVATIONS.add("tanh", nn.Tanh, "tanh(x): derivative at most 1, saturates at -1 and 1",
                grad_bound=1.0, gain="tanh", saturated=_near(-0.949, 0.949), dead=None)
ACTIVATIONS.add("maxout", Maxout, "max of k linear pieces (k=2, settable): piecewise linear, never saturates",
                grad_bound=1.0, gain="linear", saturated=None, dead=None, width_factor="k")
ACTIVATIONS.add("elu", nn.ELU, "x for x > 0, e^x - 1 otherwise: smooth, no dead units",
                grad_bound=1.0, gain="relu", saturated=None, dead=None)
ACTIVATIONS.add("selu", nn.SELU, "scaled ELU that self-normalises activations",
                grad_bound=1.0507 * 1.6733, gain="selu", saturated=None, dead=None)
ACTIVATIONS.add("gelu", nn.GELU, "x * Phi(x): smooth ReLU of transformers",
                grad_bound=1.13, gain="relu", saturated=None, dead=None)
ACTIVATIONS.add("identity", nn.Identity, "no nonlinearity (a linear model stays linear)",
                grad_bound=1.0, gain="linear", saturated=None, dead=None)


def make_activation(name: str, **options: object) -> nn.Module:
    """Build the activation registered under ``name`` with its options (see :meth:`Registry.build`)."""
    return ACTIVATIONS.build(name, **options)


def width_factor(name: str, **options: object) -> int:
    """How many pre-activation features each output unit of ``name`` reads (maxout's k, else 1)."""
    key = ACTIVATIONS.entry(name).meta.get("width_factor")
    if key is None:
        return 1
    return int(options.get(key, ACTIVATIONS.options(name)[key]))
