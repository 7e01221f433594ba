"""Weight initialisation schemes of seeds 001 and 004, by name.

Rule of seed 004: the variance of the signal should neither shrink nor grow
from layer to layer. For a layer with ``n`` inputs and ``m`` outputs:

==================== ========================================================= ==========================
``normal``           N(0, std^2), std = 0.01 by default (small random numbers) no gain
``standard_uniform`` U[-1/sqrt(n), 1/sqrt(n)]                                  no gain
``xavier_normal``    N(0, gain^2 * 2/(n+m))                                    1 (Glorot 2010)
``xavier_uniform``   U[-a, a], a = gain * sqrt(6/(n+m))                        1 (Glorot 2010)
``he_normal``        N(0, gain^2/n), gain^2 = 2 for ReLU                       the activation's (He 2015)
``he_uniform``       U[-a, a], a = gain * sqrt(3/n) = sqrt(6/n) for ReLU       the activation's (He 2015)
``orthogonal``       an orthogonal matrix times gain                           the activation's (Saxe 2014)
``default``          PyTorch's own layer defaults
``pretrained``       the matching layers of a saved run, the rest default
==================== ========================================================= ==========================

Xavier's gain is 1 whatever the activation, as in Glorot & Bengio (2010),
``torch.nn.init.xavier_*_`` and Keras' ``Glorot*``: it keeps the variance for
activations that are linear around 0 (tanh, sigmoid's centre), and under ReLU
it halves the signal's variance at each layer - the collapse He et al. (2015)
fixed with gain sqrt(2). ``init_options: {gain: ...}`` sets another gain for
``xavier_*`` and ``orthogonal``. He's schemes take the hidden activation's
gain (``torch.nn.init.calculate_gain``); the output layer, followed by no
activation, gets gain 1 with every scheme.

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
from trainwell.io import read_model_file
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


def _check_gain(gain: float) -> float:
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not math.isfinite(gain) or gain <= 0:
        raise ValueError(f"gain must be a finite number > 0, got {gain!r}")
    return float(gain)


# Each scheme is called as fill(weight, activation_gain, **init_options): activation_gain is the gain of the
# activation that follows the layer (1 for the output layer); a scheme uses it or not, as its paper does.

def _xavier_normal(w: torch.Tensor, activation_gain: float, gain: float = 1.0) -> torch.Tensor:
    """Glorot & Bengio (2010): N(0, gain^2 * 2/(n_in+n_out)), gain 1 whatever the activation."""
    return nn.init.xavier_normal_(w, gain=_check_gain(gain))


def _xavier_uniform(w: torch.Tensor, activation_gain: float, gain: float = 1.0) -> torch.Tensor:
    """Glorot & Bengio (2010): U[-a, a], a = gain * sqrt(6/(n_in+n_out)), gain 1 whatever the activation."""
    return nn.init.xavier_uniform_(w, gain=_check_gain(gain))


def _he_normal(w: torch.Tensor, activation_gain: float, mode: str = "fan_in") -> torch.Tensor:
    """He et al. (2015): N(0, gain^2/fan) with the activation's gain (2/fan_in for ReLU)."""
    return nn.init.normal_(w, 0.0, activation_gain / math.sqrt(_fan(w, mode)))


def _he_uniform(w: torch.Tensor, activation_gain: float, mode: str = "fan_in") -> torch.Tensor:
    """He et al. (2015): U[-a, a], a = gain * sqrt(3/fan) with the activation's gain."""
    bound = activation_gain * math.sqrt(3.0 / _fan(w, mode))
    return nn.init.uniform_(w, -bound, bound)


def _orthogonal(w: torch.Tensor, activation_gain: float, gain: float | None = None) -> torch.Tensor:
    """Saxe et al. (2014): an orthogonal matrix times the activation's gain (or ``gain``)."""
    return nn.init.orthogonal_(w, gain=activation_gain if gain is None else _check_gain(gain))


def _standard_uniform(w: torch.Tensor, activation_gain: float) -> torch.Tensor:
    return standard_uniform_(w)


def _normal(w: torch.Tensor, activation_gain: float, std: float = 0.01) -> torch.Tensor:
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    return nn.init.normal_(w, 0.0, std)


def _pretrained(w: torch.Tensor, activation_gain: float, run: str = "") -> torch.Tensor:
    raise AssertionError("pretrained weights are loaded by initialize(), not per tensor")


INITS.add("default", None, "PyTorch's layer defaults (Kaiming-uniform with a=sqrt(5)); no gain")
INITS.add("normal", _normal, "small random numbers N(0, std^2), std 0.01 (settable); no gain; vanishing signal in "
          "deep nets")
INITS.add("standard_uniform", _standard_uniform, "U[-1/sqrt(n_in), 1/sqrt(n_in)]; no gain")
INITS.add("xavier_normal", _xavier_normal, "Glorot 2010: N(0, gain^2 * 2/(n_in+n_out)), gain 1 whatever the "
          "activation (init_options.gain sets another); for tanh/sigmoid")
INITS.add("xavier_uniform", _xavier_uniform, "Glorot 2010: U[-a, a], a = gain * sqrt(6/(n_in+n_out)), gain 1 "
          "whatever the activation (init_options.gain sets another)")
INITS.add("he_normal", _he_normal, "He 2015: N(0, gain^2/n_in) with the activation's gain (sqrt 2 for ReLU: "
          "2/n_in); mode fan_in/fan_out")
INITS.add("he_uniform", _he_uniform, "He 2015: U[-a, a], a = gain * sqrt(3/n_in) with the activation's gain "
          "(sqrt(6/n_in) for ReLU); mode fan_in/fan_out")
INITS.add("orthogonal", _orthogonal, "Saxe 2014: orthogonal matrix times the activation's gain "
          "(init_options.gain sets another); keeps norms of signals")
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

    Schemes that take the activation's gain (``he_*``, ``orthogonal``) give
    hidden layers the gain of ``activation``, the last weighted layer (the
    output layer, followed by no activation) gain 1, and recurrent layers the
    gain of their own nonlinearity (an Elman RNN's tanh or ReLU, tanh for GRU
    and LSTM cells). ``xavier_*`` use gain 1 everywhere (or
    ``options["gain"]``), as Glorot 2010 and ``torch.nn.init`` do. Biases start at zero. A weight
    under a parametrization (weight norm) is filled through it: ``g`` and
    ``v`` are set so the layer's weight is the drawn matrix.

    Args:
        model: the network.
        scheme: a name from :data:`INITS`.
        activation: the hidden layers' activation, for the gain.
        **options: the scheme's options (``std`` of ``normal``, ``mode`` of
            ``he_*``, ``gain`` of ``xavier_*`` and ``orthogonal``, ``run`` of ``pretrained``).

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
        activation_gain = 1.0 if i == len(layers) - 1 else hidden_gain
        if isinstance(layer, _RECURRENT):  # the recurrence's own nonlinearity: an Elman RNN's, else the cells' tanh
            activation_gain = nn.init.calculate_gain(getattr(layer, "nonlinearity", "tanh"))
        with torch.no_grad():
            for name, weight in _weights(layer):
                if name.startswith("weight") and weight.dim() >= 2:
                    drawn = torch.empty_like(weight)
                    try:
                        fill(drawn, activation_gain, **options)
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

    Raises:
        TrainwellError: no run given, or its model file is missing or unreadable.
    """
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
    return report
