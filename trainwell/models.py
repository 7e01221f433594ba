"""The model zoo: networks built from a :class:`~trainwell.config.ModelConfig`.

Every family takes its choices (activation, norm, init, ...) by name from the
registries, so a new component is usable here as soon as it is registered.
A built model is ``Sequential(standardize, net)``: the first layer holds the
training split's feature statistics as buffers, so the saved model takes raw
features, exactly like the data it was trained on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from trainwell.config import ModelConfig
from trainwell.errors import TrainwellError
from trainwell.init import initialize
from trainwell.nn.activations import make_activation
from trainwell.nn.norms import make_norm
from trainwell.registry import Registry

__all__ = ["MODELS", "Standardize", "build_model", "count_parameters"]

Builder = Callable[[ModelConfig, tuple[int, ...], str, int], nn.Module]
MODELS: Registry = Registry("model")


class Standardize(nn.Module):
    """``(x - mean) / std`` with statistics fixed from the training split (buffers)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"shape={tuple(self.mean.shape)}"


def _hidden_block(layer: nn.Module, cfg: ModelConfig, width: int, dims: int) -> nn.Sequential:
    """layer -> norm -> activation -> dropout (or layer -> activation -> norm -> dropout)."""
    act, norm = make_activation(cfg.activation), make_norm(cfg.norm, width, dims)
    parts: list[tuple[str, nn.Module]] = [("linear" if dims == 0 else "conv", layer)]
    parts += [("norm", norm), ("act", act)] if cfg.norm_position == "before" else [("act", act), ("norm", norm)]
    if cfg.dropout > 0:
        parts.append(("dropout", nn.Dropout(cfg.dropout)))
    return nn.Sequential(OrderedDict((n, m) for n, m in parts if not isinstance(m, nn.Identity) or n == "act"))


@MODELS.register("logistic", "softmax regression: one linear layer (a baseline)", depth=0, width=1)
def _logistic(cfg: ModelConfig, input_shape: tuple[int, ...], kind: str, n_classes: int) -> nn.Module:
    n_in = int(torch.tensor(input_shape).prod())
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), out=nn.Linear(n_in, n_classes)))


@MODELS.register("mlp", "multilayer perceptron: depth hidden layers of width units (default 3 x 256)",
                 depth=3, width=256)
def _mlp(cfg: ModelConfig, input_shape: tuple[int, ...], kind: str, n_classes: int) -> nn.Module:
    n_in = int(torch.tensor(input_shape).prod())
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    for i in range(cfg.depth):
        layers.append((f"hidden{i}", _hidden_block(nn.Linear(n_in, cfg.width), cfg, cfg.width, 0)))
        n_in = cfg.width
    layers.append(("out", nn.Linear(n_in, n_classes)))
    return nn.Sequential(OrderedDict(layers))


class _AddChannel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, *spatial) -> (batch, 1, *spatial)
        return x.unsqueeze(1)


@MODELS.register("cnn", "convolutional net: depth stride-2 conv layers of width channels, 1-D or 2-D "
                 "(default 3 x 128)", depth=3, width=128)
def _cnn(cfg: ModelConfig, input_shape: tuple[int, ...], kind: str, n_classes: int) -> nn.Module:
    if kind not in ("signal", "image"):
        raise TrainwellError(f"model 'cnn' needs signal or image data, but the data set is {kind}; "
                             "use model.name=mlp")
    dims = 1 if kind == "signal" else 2
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    layers: list[tuple[str, nn.Module]] = [("channel", _AddChannel())]
    c_in = 1
    for i in range(cfg.depth):
        layer = conv(c_in, cfg.width, cfg.kernel_size, stride=2, padding=cfg.kernel_size // 2)
        layers.append((f"conv{i}", _hidden_block(layer, cfg, cfg.width, dims)))
        c_in = cfg.width
    body = nn.Sequential(OrderedDict(layers + [("flatten", nn.Flatten())]))
    with torch.no_grad():
        n_flat = body.eval()(torch.zeros(2, *input_shape)).shape[1]
    body.add_module("out", nn.Linear(n_flat, n_classes))
    return body.train()


class Recurrent(nn.Module):
    """Reads a signal step by step (or an image row by row); the last state is classified."""

    def __init__(self, cell: nn.RNNBase, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.rnn = cell
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(-1)  # (batch, time) -> (batch, time, 1)
        states, _ = self.rnn(x)  # (batch, time, hidden)
        return self.out(states[:, -1])


def _recurrent(cell_type: type[nn.RNNBase], family: str) -> Builder:
    def build(cfg: ModelConfig, input_shape: tuple[int, ...], kind: str, n_classes: int) -> nn.Module:
        if kind not in ("signal", "image"):
            raise TrainwellError(f"model '{family}' reads sequences: signal or image data, but the data set is "
                                 f"{kind}; use model.name=mlp")
        if cfg.depth < 1:
            raise TrainwellError(f"model '{family}' needs model.depth >= 1 stacked layers, got {cfg.depth}")
        if cfg.norm != "none":
            raise TrainwellError(f"model.norm={cfg.norm} applies to mlp and cnn; recurrent models take model.norm=none")
        n_in = 1 if kind == "signal" else input_shape[-1]
        kwargs = dict(batch_first=True, num_layers=cfg.depth, dropout=cfg.dropout if cfg.depth > 1 else 0.0)
        if cell_type is nn.RNN:
            kwargs["nonlinearity"] = "relu" if cfg.activation == "relu" else "tanh"
        return Recurrent(cell_type(n_in, cfg.width, **kwargs), cfg.width, n_classes)

    return build


MODELS.add("rnn", _recurrent(nn.RNN, "rnn"), "Elman RNN over the sequence (tanh, or relu if model.activation=relu)",
           depth=1, width=128)
MODELS.add("gru", _recurrent(nn.GRU, "gru"), "GRU over the sequence: gates keep gradients from vanishing",
           depth=1, width=128)
MODELS.add("lstm", _recurrent(nn.LSTM, "lstm"), "LSTM over the sequence: a cell state carries long memory",
           depth=1, width=128)


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int, kind: str = "tabular",
                mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> nn.Sequential:
    """Build and initialise the network described by ``cfg``.

    Args:
        cfg: the model section of a config.
        input_shape: one sample's shape, e.g. ``(40,)`` or ``(8, 8)``.
        n_classes: outputs of the last layer (logits).
        kind: ``"tabular"``, ``"signal"`` or ``"image"``.
        mean, std: feature statistics for the standardising first layer (None: identity).

    Returns:
        ``Sequential(standardize=..., net=...)`` producing logits ``(batch, n_classes)``.
    """
    net = MODELS.get(cfg.name)(cfg, tuple(input_shape), kind, n_classes)
    initialize(net, cfg.init, cfg.activation)
    first: nn.Module = nn.Identity() if mean is None else Standardize(mean, std)
    return nn.Sequential(OrderedDict(standardize=first, net=net))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
