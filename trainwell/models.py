"""The model zoo: networks built from a :class:`~trainwell.config.ModelConfig`.

Every family takes its choices (activation, norm, init, ...) by name from the
registries, so a new component is usable here as soon as it is registered.
A built model is ``Model(standardize, net)``: the first layer holds the
training split's feature statistics as buffers, so the saved model takes raw
features, exactly like the data it was trained on.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from trainwell.data.datasets import DataSpec
from trainwell.errors import TrainwellError
from trainwell.init import INITS, initialize, load_pretrained
from trainwell.nn.activations import make_activation, width_factor
from trainwell.nn.dropout import make_dropout
from trainwell.nn.norms import make_norm, wrap_layer
from trainwell.nn.recurrent import RNN_NORMS, NormRNN
from trainwell.nn.seq2seq import Seq2Seq
from trainwell.registry import Registry

if TYPE_CHECKING:  # the config is a type here: models sit below it
    from trainwell.config import ModelConfig

__all__ = ["MODELS", "Model", "ResidualBlock", "Standardize", "build_model", "count_parameters"]

MODELS: Registry = Registry("model")
# The data kinds a family takes (its entry's ``kinds``): checked when a model is built, before anything is written.
_NUMERIC = ("tabular", "signal", "image")
_ORDERED = ("signal", "image")


Builder = Callable[["ModelConfig", DataSpec], nn.Module]


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


class Model(nn.Module):
    """``net(standardize(x), *args)``: what :func:`build_model` returns.

    Extra arguments go to the network (a seq2seq model's teacher-forcing targets).
    ``init_report`` says what a pretrained start loaded and skipped (None for other inits).
    """

    def __init__(self, standardize: nn.Module, net: nn.Module, init_report: dict | None = None) -> None:
        super().__init__()
        self.standardize, self.net = standardize, net
        self.init_report = init_report

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(x), *args)


class ResidualBlock(nn.Module):
    """``act(body(x) + x)``, or ``act(body(x))`` without the skip (He et al. 2016).

    A plain and a residual net built from these blocks differ only in the
    skip connection, which is what the degradation comparison needs.
    """

    def __init__(self, body: nn.Module, activation: nn.Module, skip: bool = True) -> None:
        super().__init__()
        self.body, self.act, self.skip = body, activation, skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return self.act(out + x if self.skip else out)

    def extra_repr(self) -> str:
        return f"skip={self.skip}"


def _act(cfg: ModelConfig) -> nn.Module:
    return make_activation(cfg.activation, **cfg.activation_options)


def _hidden_block(layer: nn.Module, cfg: ModelConfig, width: int, dims: int, dropout: bool = True
                  ) -> nn.Sequential:
    """layer -> norm -> activation -> dropout (or layer -> activation -> norm -> dropout).

    ``layer`` produces ``width * k`` features for maxout's k pieces; a wrapping
    norm (weight, cosine) rewrites the layer instead of following it.
    """
    pieces = width_factor(cfg.activation, **cfg.activation_options)
    layer = wrap_layer(cfg.norm, layer, **cfg.norm_options)
    act = _act(cfg)
    before = cfg.norm_position == "before"
    norm = make_norm(cfg.norm, width * pieces if before else width, dims, **cfg.norm_options)
    parts: list[tuple[str, nn.Module]] = [("linear" if dims == 0 else "conv", layer)]
    parts += [("norm", norm), ("act", act)] if before else [("act", act), ("norm", norm)]
    if dropout and cfg.dropout > 0:
        parts.append(("dropout", make_dropout(cfg.dropout_mode, cfg.dropout)))
    return nn.Sequential(OrderedDict((n, m) for n, m in parts if not isinstance(m, nn.Identity) or n == "act"))


def _residual_block(make_layer: Callable[[], nn.Module], cfg: ModelConfig, dims: int) -> ResidualBlock:
    """Two layers, the second's norm before the sum, the activation after it."""
    first = _hidden_block(make_layer(), cfg, cfg.width, dims, dropout=False)
    second = wrap_layer(cfg.norm, make_layer(), **cfg.norm_options)
    parts = [("block0", first), ("linear" if dims == 0 else "conv", second),
             ("norm", make_norm(cfg.norm, cfg.width, dims, **cfg.norm_options))]
    if cfg.dropout > 0:
        parts.append(("dropout", make_dropout(cfg.dropout_mode, cfg.dropout)))
    body = nn.Sequential(OrderedDict((n, m) for n, m in parts if not isinstance(m, nn.Identity)))
    return ResidualBlock(body, _act(cfg))


def _check_residual(cfg: ModelConfig, family: str) -> int:
    """The number of residual blocks after the stem layer."""
    if cfg.depth < 3 or cfg.depth % 2 == 0:
        raise TrainwellError(f"model.residual needs an odd model.depth >= 3 for {family} (a stem layer, then "
                             f"blocks of two layers), got {cfg.depth}")
    if width_factor(cfg.activation, **cfg.activation_options) != 1:
        raise TrainwellError(f"model.residual cannot use activation {cfg.activation!r}, which changes the width; "
                             "use relu, leaky_relu, elu, ...")
    if cfg.norm_position != "before":
        raise TrainwellError("model.residual places each norm before its activation; use model.norm_position=before")
    return (cfg.depth - 1) // 2


def _input_dropout(cfg: ModelConfig) -> list[tuple[str, nn.Module]]:
    return [("input_dropout", make_dropout(cfg.dropout_mode, cfg.input_dropout))] if cfg.input_dropout > 0 else []


def _refuse(cfg: ModelConfig, family: str, **allowed: object) -> None:
    """Refuse choices a family ignores, instead of silently ignoring them."""
    defaults = {"norm": "none", "residual": False, "rnn_norm": "none", "attention": "none", "input_dropout": 0.0}
    for key, default in defaults.items():
        if key not in allowed and getattr(cfg, key) != default:
            raise TrainwellError(f"model.{key}={getattr(cfg, key)} does not apply to model {family!r}; "
                                 f"leave it at {default}")


@MODELS.register("logistic", "softmax regression: one linear layer (a baseline)", depth=0, width=1,
                 kinds=_NUMERIC)
def _logistic(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    _refuse(cfg, "logistic", input_dropout=True)
    n_in = math.prod(spec.input_shape)
    return nn.Sequential(OrderedDict(_input_dropout(cfg) + [("flatten", nn.Flatten()),
                                                            ("out", nn.Linear(n_in, spec.n_classes))]))


@MODELS.register("mlp", "multilayer perceptron: depth hidden layers of width units (default 3 x 256); "
                 "model.residual adds skip connections", depth=3, width=256, kinds=_NUMERIC)
def _mlp(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    _refuse(cfg, "mlp", norm=True, residual=True, input_dropout=True)
    n_in = math.prod(spec.input_shape)
    pieces = width_factor(cfg.activation, **cfg.activation_options)
    layers: list[tuple[str, nn.Module]] = _input_dropout(cfg) + [("flatten", nn.Flatten())]
    if cfg.residual:
        blocks = _check_residual(cfg, "mlp")
        layers.append(("hidden0", _hidden_block(nn.Linear(n_in, cfg.width), cfg, cfg.width, 0)))
        layers += [(f"block{i}", _residual_block(lambda: nn.Linear(cfg.width, cfg.width), cfg, 0))
                   for i in range(blocks)]
        n_in = cfg.width
    else:
        for i in range(cfg.depth):
            layers.append((f"hidden{i}", _hidden_block(nn.Linear(n_in, cfg.width * pieces), cfg, cfg.width, 0)))
            n_in = cfg.width
    layers.append(("out", nn.Linear(n_in, spec.n_classes)))
    return nn.Sequential(OrderedDict(layers))


class _AddChannel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, *spatial) -> (batch, 1, *spatial)
        return x.unsqueeze(1)


@MODELS.register("cnn", "convolutional net: depth stride-2 conv layers of width channels, 1-D or 2-D "
                 "(default 3 x 128); model.residual: a stride-2 stem, then blocks of stride-1 convs",
                 depth=3, width=128, kinds=_ORDERED)
def _cnn(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    if spec.kind not in ("signal", "image"):
        raise TrainwellError(f"model 'cnn' needs signal or image data, but the data set is {spec.kind}; "
                             "use model.name=mlp")
    _refuse(cfg, "cnn", norm=True, residual=True, input_dropout=True)
    dims = 1 if spec.kind == "signal" else 2
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    k, pad = cfg.kernel_size, cfg.kernel_size // 2
    pieces = width_factor(cfg.activation, **cfg.activation_options)
    layers: list[tuple[str, nn.Module]] = _input_dropout(cfg) + [("channel", _AddChannel())]
    if cfg.residual:
        if k % 2 == 0:
            raise TrainwellError(f"model.residual needs an odd model.kernel_size (so a conv keeps the length), "
                                 f"got {k}")
        blocks = _check_residual(cfg, "cnn")
        layers.append(("conv0", _hidden_block(conv(1, cfg.width, k, stride=2, padding=pad), cfg, cfg.width, dims)))
        layers += [(f"block{i}", _residual_block(lambda: conv(cfg.width, cfg.width, k, padding=pad), cfg, dims))
                   for i in range(blocks)]
    else:
        c_in = 1
        for i in range(cfg.depth):
            layer = conv(c_in, cfg.width * pieces, k, stride=2, padding=pad)
            layers.append((f"conv{i}", _hidden_block(layer, cfg, cfg.width, dims)))
            c_in = cfg.width
    body = nn.Sequential(OrderedDict(layers + [("flatten", nn.Flatten())]))
    with torch.no_grad():
        n_flat = body.eval()(torch.zeros(2, *spec.input_shape)).shape[1]
    body.add_module("out", nn.Linear(n_flat, spec.n_classes))
    return body.train()


class Recurrent(nn.Module):
    """Reads a signal step by step (or an image row by row); the last state is classified."""

    def __init__(self, rnn: nn.Module, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(-1)  # (batch, time) -> (batch, time, 1)
        states, _ = self.rnn(x)  # (batch, time, hidden)
        return self.out(states[:, -1])


def _recurrent(cell: str) -> Builder:
    def build(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
        if spec.kind not in ("signal", "image"):
            raise TrainwellError(f"model '{cell}' reads sequences: signal or image data, but the data set is "
                                 f"{spec.kind}; use model.name=mlp")
        if cfg.depth < 1:
            raise TrainwellError(f"model '{cell}' needs model.depth >= 1 stacked layers, got {cfg.depth}")
        if cfg.norm != "none":
            raise TrainwellError(f"model.norm={cfg.norm} applies to mlp and cnn; recurrent models take "
                                 f"model.rnn_norm ({', '.join(RNN_NORMS.names())})")
        _refuse(cfg, cell, rnn_norm=True)
        n_in = 1 if spec.kind == "signal" else spec.input_shape[-1]
        dropout = cfg.dropout if cfg.depth > 1 else 0.0
        nonlinearity = "relu" if cfg.activation == "relu" else "tanh"
        if cfg.rnn_norm == "none":  # torch's fused layers: same function, faster
            kwargs: dict = dict(batch_first=True, num_layers=cfg.depth, dropout=dropout)
            if cell == "rnn":
                kwargs["nonlinearity"] = nonlinearity
            rnn: nn.Module = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](n_in, cfg.width, **kwargs)
        else:
            rnn = NormRNN(cell, n_in, cfg.width, cfg.depth, cfg.rnn_norm, nonlinearity, dropout,
                          max_steps=spec.input_shape[0])
        return Recurrent(rnn, cfg.width, spec.n_classes)

    return build


MODELS.add("rnn", _recurrent("rnn"), "Elman RNN over the sequence (tanh, or relu if model.activation=relu)",
           depth=1, width=128, kinds=_ORDERED)
MODELS.add("gru", _recurrent("gru"), "GRU over the sequence: gates keep gradients from vanishing",
           depth=1, width=128, kinds=_ORDERED)
MODELS.add("lstm", _recurrent("lstm"), "LSTM over the sequence: a cell state carries long memory",
           depth=1, width=128, kinds=_ORDERED)


@MODELS.register("seq2seq", "encoder-decoder GRU (or LSTM: model.activation ignored, model.options) for sequence "
                 "tasks, model.attention none/additive/dot/general", depth=1, width=64, kinds=("sequence",))
def _seq2seq(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    if spec.kind != "sequence" or spec.input_vocab is None or spec.target_length is None:
        raise TrainwellError(f"model 'seq2seq' needs a sequence task (copy, reverse, sort, addition), but the data "
                             f"set is {spec.kind}")
    _refuse(cfg, "seq2seq", attention=True)
    if cfg.depth != 1:
        raise TrainwellError(f"model 'seq2seq' has one encoder and one decoder layer; use model.depth=1, "
                             f"got {cfg.depth}")
    return Seq2Seq(spec.input_vocab, spec.n_classes, spec.target_length, hidden=cfg.width,
                   cell=cfg.cell, attention=cfg.attention)


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int, kind: str = "tabular",
                mean: torch.Tensor | None = None, std: torch.Tensor | None = None, *,
                input_vocab: int | None = None, target_length: int | None = None) -> Model:
    """Build and initialise the network described by ``cfg``.

    Args:
        cfg: the model section of a config.
        input_shape: one sample's shape, e.g. ``(40,)`` or ``(8, 8)``.
        n_classes: outputs of the last layer (logits).
        kind: ``"tabular"``, ``"signal"``, ``"image"`` or ``"sequence"``.
        mean, std: feature statistics for the standardising first layer (None: identity).
        input_vocab, target_length: for sequence tasks.

    Returns:
        ``Model(standardize=..., net=...)`` producing logits ``(batch, n_classes)``
        (sequence tasks: ``(batch, n_classes, target_length)``).

    Raises:
        TrainwellError: a choice the family cannot build, with what to change.
    """
    spec = DataSpec(tuple(input_shape), n_classes, kind, input_vocab, target_length)
    _check_kind(cfg.name, kind)
    net = MODELS.get(cfg.name)(cfg, spec)
    if cfg.init == "pretrained":  # what was loaded and skipped, for the run's metrics
        INITS.check_options(cfg.init, cfg.init_options)
        report = load_pretrained(net, **cfg.init_options)
    else:
        initialize(net, cfg.init, cfg.activation, **cfg.init_options)
        report = None
    first: nn.Module = nn.Identity() if mean is None or kind == "sequence" else Standardize(mean, std)
    return Model(first, net, init_report=report)


def _check_kind(family: str, kind: str) -> None:
    """Refuse data a family cannot take (an mlp over a sequence task would fail at its first forward)."""
    kinds = MODELS.entry(family).meta.get("kinds")
    if kinds is None or kind in kinds:
        return
    takers = [e.name for e in MODELS if kind in e.meta.get("kinds", ())]
    raise TrainwellError(f"model '{family}' needs {' or '.join(kinds)} data, but the data set is {kind}; "
                         f"{kind} tasks take model.name={' or '.join(takers) or '(none registered)'}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
