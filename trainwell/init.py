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
``pretrained``      the matching layers of a saved run, the rest default
=================== ==========================================================

Biases start at zero with every scheme except ``default``. Schemes are
in-place functions ending in ``_``, as in ``torch.nn.init``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from trainwell.errors import TrainwellError
from trainwell.nn.activations import ACTIVATIONS
from trainwell.nn.recurrent import RecurrentLayer
from trainwell.registry import Registry

__all__ = ["INITS", "initialize", "load_pretrained", "standard_uniform_"]

INITS: Registry = Registry("init")

_RECURRENT = (nn.RNNBase, nn.RNNCellBase, RecurrentLayer)
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, *_RECURRENT)


def standard_uniform_(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Fill ``weight`` from U[-1/sqrt(fan_in), 1/sqrt(fan_in)] in place."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def _fan(weight: torch.Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return fan_in if mode == "fan_in" else fan_out


def _he_normal(w: torch.Tensor, gain: float, mode: str = "fan_in") -> torch.Tensor:
    return nn.init.normal_(w, 0.0, gain / math.sqrt(_fan(w, mode)))


def _he_uniform(w: torch.Tensor, gain: float, mode: str = "fan_in") -> torch.Tensor:
    bound = gain * math.sqrt(3.0 / _fan(w, mode))
    return nn.init.uniform_(w, -bound, bound)


def _normal(w: torch.Tensor, gain: float, std: float = 0.01) -> torch.Tensor:
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    return nn.init.normal_(w, 0.0, std)


def _pretrained(w: torch.Tensor, gain: float, run: str = "") -> torch.Tensor:
    raise AssertionError("pretrained weights are loaded by initialize(), not per tensor")


INITS.add("default", None, "PyTorch's layer defaults (Kaiming-uniform with a=sqrt(5))")
INITS.add("normal", _normal, "small random numbers N(0, std^2), std 0.01 (settable); vanishing signal in deep nets")
INITS.add("standard_uniform", lambda w, gain: standard_uniform_(w),
          "U[-1/sqrt(n_in), 1/sqrt(n_in)]")
INITS.add("xavier_normal", lambda w, gain: nn.init.xavier_normal_(w, gain=gain),
          "Glorot: N(0, 2/(n_in+n_out)) times gain; for tanh/sigmoid")
INITS.add("xavier_uniform", lambda w, gain: nn.init.xavier_uniform_(w, gain=gain),
          "Glorot: U[-a, a], a = sqrt(6/(n_in+n_out)) times gain")
INITS.add("he_normal", _he_normal, "He/Kaiming: N(0, 2/n_in) for ReLU; gain per activation, mode fan_in/fan_out")
INITS.add("he_uniform", _he_uniform, "He/Kaiming: U[-a, a], a = sqrt(6/n_in) for ReLU; mode fan_in/fan_out")
INITS.add("orthogonal", lambda w, gain: nn.init.orthogonal_(w, gain=gain),
          "orthogonal matrix times gain (keeps norms of signals)")
INITS.add("pretrained", _pretrained, "load the layers that match (name and shape) from a run directory "
          "(init_options: {run: DIR}); the others keep PyTorch's defaults")


def _gain(activation: str) -> float:
    name = ACTIVATIONS.entry(activation).meta["gain"]
    return nn.init.calculate_gain(name, 0.01) if name == "leaky_relu" else nn.init.calculate_gain(name)


def _weights(layer: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The layer's weight matrices and biases, seen through parametrizations (weight norm)."""
    names = [n for n, _ in layer.named_parameters(recurse=False)]
    if parametrize.is_parametrized(layer):
        names += list(layer.parametrizations.keys())
    return [(n, getattr(layer, n)) for n in names]


def initialize(model: nn.Module, scheme: str, activation: str = "relu", **options: Any) -> nn.Module:
    """Re-initialise every linear, conv and recurrent layer of ``model`` in place.

    Hidden layers get the gain of ``activation``; the last weighted layer (the
    output layer, followed by no activation) gets gain 1; recurrent layers get
    the gain of their own nonlinearity (an Elman RNN's tanh or ReLU, tanh for
    GRU and LSTM cells). Biases start at zero. A weight
    under a parametrization (weight norm) is filled through it: ``g`` and
    ``v`` are set so the layer's weight is the drawn matrix.

    Args:
        model: the network.
        scheme: a name from :data:`INITS`.
        activation: the hidden layers' activation, for the gain.
        **options: the scheme's options (``std`` of ``normal``, ``mode`` of
            ``he_*``, ``run`` of ``pretrained``).

    Returns:
        ``model``, for chaining.

    Raises:
        TrainwellError: unknown scheme or option, or an unusable pretrained run.

    Example:
        >>> net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2))
        >>> _ = initialize(net, "he_normal", "relu")
    """
    INITS.check_options(scheme, options)
    if scheme == "pretrained":
        load_pretrained(model, **options)
        return model
    fill = INITS.get(scheme)
    if fill is None:
        return model
    layers = [m for m in model.modules() if isinstance(m, _WEIGHTED)]
    hidden_gain = _gain(activation)
    for i, layer in enumerate(layers):
        gain = 1.0 if i == len(layers) - 1 else hidden_gain
        if isinstance(layer, _RECURRENT):  # the recurrence's own nonlinearity: an Elman RNN's, else the cells' tanh
            gain = nn.init.calculate_gain(getattr(layer, "nonlinearity", "tanh"))
        with torch.no_grad():
            for name, weight in _weights(layer):
                if name.startswith("weight") and weight.dim() >= 2:
                    drawn = torch.empty_like(weight)
                    try:
                        fill(drawn, gain, **options)
                    except ValueError as err:
                        raise TrainwellError(f"init {scheme!r}: {err}") from None
                    if isinstance(weight, nn.Parameter):
                        weight.copy_(drawn)
                    else:  # parametrized: assigning runs the parametrization's right inverse
                        setattr(layer, name, drawn)
                elif name.startswith("bias") and weight is not None:
                    weight.zero_()
    return model


def load_pretrained(model: nn.Module, run: str | Path = "") -> dict[str, Any]:
    """Copy into ``model`` every tensor of a run's saved model that matches by name and shape.

    The file is read with safetensors (no unpickling). Names are compared
    without the saved model's ``net.`` prefix when ``model`` has none.

    Args:
        model: the network to fill.
        run: a run directory written by ``trainwell train`` (or its ``model.safetensors``).

    Returns:
        ``{"loaded": [names], "skipped": {name: reason}}`` for the caller to report;
        also kept as ``model.pretrained_report``.

    Raises:
        TrainwellError: no run given, or its model file is missing or unreadable.
    """
    from trainwell.train.run import read_model_file  # the train package builds models

    if not run:
        raise TrainwellError("init 'pretrained' needs the run to load: model.init_options={run: DIR}")
    path = Path(run)
    try:
        _, saved = read_model_file(path / "model.safetensors" if path.is_dir() else path)
    except TrainwellError as err:
        raise TrainwellError(f"init 'pretrained': {err}") from None
    own = model.state_dict()
    if not any(k.startswith("net.") for k in own):
        saved = {k[4:] if k.startswith("net.") else k: v for k, v in saved.items()}
    loaded, skipped = [], {}
    for name, tensor in own.items():
        if name not in saved:
            skipped[name] = "not in the saved model"
        elif saved[name].shape != tensor.shape:
            skipped[name] = f"shape {tuple(saved[name].shape)} saved, {tuple(tensor.shape)} here"
        else:
            loaded.append(name)
    model.load_state_dict({n: saved[n] for n in loaded}, strict=False)
    report = {"source": str(path), "loaded": loaded, "skipped": skipped}
    model.pretrained_report = report
    return report
