"""Weight initialisation schemes of seeds 001 and 004, by name.

Rule of seed 004: the variance of the signal should neither shrink nor grow
from layer to layer. For a layer with ``n`` inputs and ``m`` outputs:

=================== ==========================================================
``normal``          N(0, std^2), std = 0.01 by default (small random numbers)
``standard_uniform`` U[-1/sqrt(n), 1/sqrt(n)]
``xavier_normal``   N(0, gain^2 * 2/(n+m))
``xavier_uniform``  U[-a, a], a = gain * sqrt(6/(n+m))
``he_normal``       N(0, gain^2/n), gain^2 = 2 for ReLU
``he_uniform``      U[-a, a], a = gain * sqrt(3/n) = sqrt(6/n) for ReLU
``orthogonal``      an orthogonal matrix times gain
``default``         PyTorch's own layer defaults
=================== ==========================================================

Biases start at zero with every scheme except ``default``. Schemes are
in-place functions ending in ``_``, as in ``torch.nn.init``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainwell.nn.activations import ACTIVATIONS
from trainwell.registry import Registry

__all__ = ["INITS", "initialize", "standard_uniform_"]

INITS: Registry = Registry("init")

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase)


def standard_uniform_(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Fill ``weight`` from U[-1/sqrt(fan_in), 1/sqrt(fan_in)] in place."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


INITS.add("default", None, "PyTorch's layer defaults (Kaiming-uniform with a=sqrt(5))")
INITS.add("normal", lambda w, gain, std=0.01: nn.init.normal_(w, 0.0, std),
          "small random numbers N(0, 0.01^2); vanishing signal in deep nets")
INITS.add("standard_uniform", lambda w, gain: standard_uniform_(w),
          "U[-1/sqrt(n_in), 1/sqrt(n_in)]")
INITS.add("xavier_normal", lambda w, gain: nn.init.xavier_normal_(w, gain=gain),
          "Glorot: N(0, 2/(n_in+n_out)) times gain; for tanh/sigmoid")
INITS.add("xavier_uniform", lambda w, gain: nn.init.xavier_uniform_(w, gain=gain),
          "Glorot: U[-a, a], a = sqrt(6/(n_in+n_out)) times gain")
INITS.add("he_normal", lambda w, gain: nn.init.normal_(w, 0.0, gain / math.sqrt(_fan_in(w))),
          "He/Kaiming: N(0, 2/n_in) for ReLU; gain per activation")
INITS.add("he_uniform", lambda w, gain: nn.init.uniform_(w, -gain * math.sqrt(3.0 / _fan_in(w)),
                                                           gain * math.sqrt(3.0 / _fan_in(w))),
          "He/Kaiming: U[-a, a], a = sqrt(6/n_in) for ReLU")
INITS.add("orthogonal", lambda w, gain: nn.init.orthogonal_(w, gain=gain),
          "orthogonal matrix times gain (keeps norms of signals)")


def _fan_in(weight: torch.Tensor) -> int:
    return nn.init._calculate_fan_in_and_fan_out(weight)[0]


def _gain(activation: str) -> float:
    name = ACTIVATIONS.entry(activation).meta["gain"]
    return nn.init.calculate_gain(name, 0.01) if name == "leaky_relu" else nn.init.calculate_gain(name)


def initialize(model: nn.Module, scheme: str, activation: str = "relu") -> nn.Module:
    """Re-initialise every linear, conv and recurrent layer of ``model`` in place.

    Hidden layers get the gain of ``activation``; the last weighted layer (the
    output layer, followed by no activation) gets gain 1; recurrent layers get
    the gain of tanh, their own nonlinearity.

    Args:
        model: the network.
        scheme: a name from :data:`INITS`.
        activation: the hidden layers' activation, for the gain.

    Returns:
        ``model``, for chaining.

    Example:
        >>> net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2))
        >>> _ = initialize(net, "he_normal", "relu")
    """
    fill = INITS.get(scheme)
    if fill is None:
        return model
    layers = [m for m in model.modules() if isinstance(m, _WEIGHTED)]
    hidden_gain = _gain(activation)
    for i, layer in enumerate(layers):
        gain = 1.0 if i == len(layers) - 1 else hidden_gain
        if isinstance(layer, nn.RNNBase):
            gain = nn.init.calculate_gain("tanh")
        for name, param in layer.named_parameters(recurse=False):
            with torch.no_grad():
                if name.startswith("weight") and param.dim() >= 2:
                    fill(param, gain)
                elif name.startswith("bias"):
                    param.zero_()
    return model
