"""The sick-run benchmark's cases: deliberately broken set-ups and healthy ones.

Each case is a small config (or, for problems in the data, a config plus data
built here) with what a correct diagnosis must contain:

* ``expect``: symptoms that must be found (recall);
* ``allow``: symptoms that may also be found because the injected problem
  causes them too (e.g. a sigmoid net that vanishes also plateaus); any
  other finding above ``info`` counts against precision;
* ``cause``: the cause the NaN finding must name;
* ``layer``: the layer the main finding must name (a prefix of the module name);
* ``fix``: overrides that undo the injected fault; the run with them is the
  healthy baseline the repaired run is compared with.

Healthy cases expect nothing and allow nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from trainwell.data import Data, Split, load_data

QUICK = {"train": {"progress": False}, "checkpoint": {"every_epochs": None, "best": False}}


def cfg(data: str, epochs: int, n: int | None = None, model: dict | None = None, optim: dict | None = None,
        **more: Any) -> dict[str, Any]:
    c = {"data": {"name": data, **({"n_samples": n} if n else {})}, "model": {"dropout": 0.0, **(model or {})},
         "optim": optim or {}, "train": {"epochs": epochs, "progress": False},
         "checkpoint": {"every_epochs": None, "best": False},
         # the cases were written when runs had no early stopping by default: pinned, so each stays what it was
         "early_stopping": {"enabled": False}}
    for key, value in more.items():
        c[key] = value
    return c


@dataclass
class Case:
    name: str
    config: dict[str, Any]
    expect: set[str] = field(default_factory=set)
    allow: set[str] = field(default_factory=set)
    cause: str | None = None
    layer: str | None = None
    main: str | None = None  # the symptom whose layer is checked (default: the one expected)
    fix: list[str] = field(default_factory=list)  # the injected fault undone: the healthy twin of the case
    data: str | None = None  # a builder below, for problems in the data
    custom: str | None = None  # a hand-built run of held_out_6.CUSTOM_6 (a torch model, loss and optimizer)

    @property
    def healthy(self) -> bool:
        return not self.expect


SGD = lambda lr, **kw: {"name": "sgd", "lr": lr, **kw}  # noqa: E731
PLAIN = {"plateau": {"slow_convergence", "underfitting"}}
VANISH_ALLOW = {"saturation", "slow_convergence", "underfitting", "bad_initialisation", "learning_rate_too_low"}
UNSTABLE = {"dead_relu", "exploding_gradients", "learning_rate_too_high", "slow_convergence", "underfitting",
            "nan_loss", "oscillating_loss"}
NAN_ALLOW = {"dead_relu", "exploding_gradients", "learning_rate_too_high", "divergence", "bad_initialisation",
             "saturation"}


def _mlp(act: str, depth: int, width: int = 64, **kw: Any) -> dict[str, Any]:
    return {"name": "mlp", "activation": act, "depth": depth, "width": width, **kw}


def _cnn(act: str, depth: int, width: int = 16, **kw: Any) -> dict[str, Any]:
    return {"name": "cnn", "activation": act, "depth": depth, "width": width, **kw}


N = 4000  # MNIST-1D rows of a sick case: enough for its healthy twin to learn in 20 epochs

HEALTHY_MLP = cfg("mnist1d", 6, 1500, _mlp("relu", 3))
HEALTHY_CNN = cfg("mnist1d", 6, 1500, _cnn("relu", 3))
HEALTHY_DIGITS = cfg("digits", 6, None, _mlp("relu", 2))

RELU = ["model.activation=relu", "model.init=he_normal"]
LR = ["optim.lr=0.1"]
RNN_LR = ["optim.lr=1.0"]  # plain SGD trains a GRU/LSTM on digits at 1.0
INIT = ["model.init=he_normal", "model.init_options={}"]
STOP = ["early_stopping.enabled=true", "early_stopping.patience=5"]

SICK: list[Case] = [
    # vanishing gradients: derivatives below 1 multiplied layer after layer
    Case("mlp-sigmoid-6-mnist1d", cfg("mnist1d", 20, N, _mlp("sigmoid", 6), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0", fix=RELU),
    Case("mlp-sigmoid-8-digits", cfg("digits", 20, None, _mlp("sigmoid", 8), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0", fix=RELU),
    Case("mlp-sigmoid-6-spiral", cfg("spiral", 20, None, _mlp("sigmoid", 6), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0", fix=RELU),
    Case("mlp-sigmoid-5-adam-mnist1d", cfg("mnist1d", 20, N, _mlp("sigmoid", 5, 128)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0", fix=RELU),
    Case("mlp-tiny-init-relu-6", cfg("mnist1d", 20, N, _mlp("relu", 6, init="normal"), SGD(0.1)),
         {"vanishing_gradients", "bad_initialisation"}, VANISH_ALLOW | {"dead_relu"}, layer="net.hidden0",
         main="vanishing_gradients", fix=INIT),
    Case("mlp-tiny-init-tanh-6", cfg("mnist1d", 20, N, _mlp("tanh", 6, init="normal"), SGD(0.1)),
         {"vanishing_gradients", "bad_initialisation"}, VANISH_ALLOW, layer="net.hidden0",
         main="vanishing_gradients", fix=INIT),
    Case("cnn-sigmoid-5-mnist1d", cfg("mnist1d", 20, N, _cnn("sigmoid", 5), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.conv0", fix=RELU),
    Case("cnn-sigmoid-4-digits", cfg("digits", 20, None, _cnn("sigmoid", 4, kernel_size=3), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.conv0", fix=RELU),
    # NaN from a learning rate far too high
    Case("mlp-sgd-lr20-mnist1d", cfg("mnist1d", 20, N, _mlp("relu", 3), SGD(20.0)),
         {"nan_loss"}, NAN_ALLOW, cause="learning_rate_too_high", fix=LR),
    Case("mlp-sgd-lr50-digits", cfg("digits", 20, None, _mlp("relu", 2), SGD(50.0)),
         {"nan_loss"}, NAN_ALLOW, cause="learning_rate_too_high", fix=LR),
    Case("mlp-sgd-lr100-moons", cfg("moons", 20, None, _mlp("relu", 3), SGD(100.0)),
         {"nan_loss"}, NAN_ALLOW, cause="learning_rate_too_high", fix=LR),
    Case("mlp-sgd-lr30-spiral", cfg("spiral", 20, None, _mlp("relu", 3), SGD(30.0)),
         {"nan_loss"}, NAN_ALLOW, cause="learning_rate_too_high", fix=LR),
    # a learning rate so high that every step changes the weights by more than their size
    Case("gru-sgd-lr200-digits", cfg("digits", 20, None, {"name": "gru", "width": 32}, SGD(200.0)),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=RNN_LR),
    Case("lstm-sgd-lr200-digits", cfg("digits", 20, None, {"name": "lstm", "width": 32}, SGD(200.0)),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=RNN_LR),
    # NaN from exploding gradients: weights far too large for the depth
    Case("mlp-huge-init-relu-8", cfg("mnist1d", 20, N, _mlp("relu", 8, init="normal", init_options={"std": 1.0}),
                                     SGD(0.1)),
         {"nan_loss", "exploding_gradients"}, NAN_ALLOW, cause="exploding_gradients", main="nan_loss", fix=INIT),
    Case("mlp-huge-init-relu-10-digits", cfg("digits", 20, None, _mlp("relu", 10, init="normal",
                                                                     init_options={"std": 1.0}), SGD(0.1)),
         {"nan_loss", "exploding_gradients"}, NAN_ALLOW, cause="exploding_gradients", main="nan_loss", fix=INIT),
    # weights far too large, not deep enough to overflow: the variance explodes from layer to layer
    Case("cnn-huge-init-relu", cfg("mnist1d", 20, N, _cnn("relu", 3, 32, init="normal",
                                                            init_options={"std": 1.0}), SGD(0.1)),
         {"bad_initialisation"}, NAN_ALLOW | {"nan_loss", "divergence"}, layer="net.conv", fix=INIT),
    # NaN from log(0) in a naive loss
    Case("mlp-naive-ce-mnist1d", cfg("mnist1d", 20, N, _mlp("relu", 3, init="normal", init_options={"std": 1.0}),
                                     SGD(0.1), loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss", fix=["loss=cross_entropy", *INIT]),
    Case("mlp-naive-ce-digits", cfg("digits", 20, None, _mlp("relu", 2), SGD(10.0), loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss", fix=["loss=cross_entropy", "optim.lr=0.1"]),
    Case("cnn-naive-ce-mnist1d", cfg("mnist1d", 20, N, _cnn("relu", 3), SGD(5.0), loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss", fix=["loss=cross_entropy", "optim.lr=0.1"]),
    # dead ReLUs thrown below zero by large steps
    Case("mlp-sgd-lr3-dead", cfg("mnist1d", 20, N, _mlp("relu", 3), SGD(3.0)),
         {"dead_relu"}, {"learning_rate_too_high", "slow_convergence", "underfitting", "divergence",
                         "oscillating_loss"}, fix=LR),
    Case("cnn-sgd-lr3-dead", cfg("mnist1d", 20, N, _cnn("relu", 3), SGD(3.0)),
         {"dead_relu"}, {"learning_rate_too_high", "slow_convergence", "underfitting", "divergence",
                         "oscillating_loss"}, fix=LR),
    Case("cnn-sgd-lr20-dead", cfg("mnist1d", 20, 1500, _cnn("relu", 3), SGD(20.0)),  # 4000 rows: NaN first
         {"dead_relu"}, {"learning_rate_too_high", "slow_convergence", "underfitting", "divergence",
                         "oscillating_loss", "nan_loss"}, fix=LR),
    # saturation: sigmoid/tanh pushed to their limits by large weights
    Case("mlp-tanh-big-init", cfg("mnist1d", 20, N, _mlp("tanh", 3, init="normal", init_options={"std": 2.0}),
                                  SGD(0.1)),
         {"saturation"}, {"vanishing_gradients", "slow_convergence", "underfitting", "bad_initialisation"},
         fix=["model.init=xavier_normal", "model.init_options={}"]),
    Case("mlp-sigmoid-big-init", cfg("digits", 20, None, _mlp("sigmoid", 3, init="normal",
                                                             init_options={"std": 2.0}), SGD(0.5)),
         {"saturation"}, {"vanishing_gradients", "slow_convergence", "underfitting", "bad_initialisation"},
         fix=["model.init=xavier_normal", "model.init_options={}"]),
    Case("cnn-tanh-big-init", cfg("mnist1d", 20, N, _cnn("tanh", 3, init="normal", init_options={"std": 2.0}),
                                  SGD(0.1)),
         {"saturation"}, {"vanishing_gradients", "slow_convergence", "underfitting", "bad_initialisation"},
         fix=["model.init=xavier_normal", "model.init_options={}"]),
    # learning rate far too low: updates ~1e-8 of the weights, the loss plateaus
    Case("mlp-sgd-lr1e-7", cfg("mnist1d", 20, N, _mlp("relu", 3), SGD(1e-7)),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=LR),
    Case("cnn-sgd-lr1e-7", cfg("mnist1d", 20, N, _cnn("relu", 3), SGD(1e-7)),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=LR),
    Case("mlp-sgd-lr1e-7-digits", cfg("digits", 20, None, _mlp("relu", 2), SGD(1e-7)),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=LR),
    Case("gru-sgd-lr1e-7-digits", cfg("digits", 20, None, {"name": "gru", "width": 16}, SGD(1e-7)),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=RNN_LR),
    # divergence and oscillation: steps that overshoot, the loss grows or swings without a NaN
    Case("mlp-adam-lr1-mnist1d", cfg("mnist1d", 20, N, _mlp("relu", 3), {"name": "adam", "lr": 1.0}),
         {"divergence"}, UNSTABLE, fix=["optim.lr=0.001"]),
    Case("mlp-adam-lr0.3-spiral", cfg("spiral", 20, None, _mlp("relu", 3), {"name": "adam", "lr": 0.3}),
         {"divergence"}, UNSTABLE, fix=["optim.lr=0.001"]),
    Case("gd-lr8-moons", cfg("moons", 100, None, _mlp("relu", 2), SGD(8.0), data_batch=100000),
         {"oscillating_loss"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.5"]),
    # overfitting: a big model, few rows, no regularisation, many epochs
    Case("mlp-overfit-mnist1d", cfg("mnist1d", 60, 400, _mlp("relu", 2, 512)), {"overfitting"}, set(), fix=STOP),
    Case("mlp-overfit-circles", cfg("circles", 100, 200, _mlp("relu", 2, 512), data_noise=0.3), {"overfitting"},
         set(), fix=STOP),
    Case("cnn-overfit-mnist1d", cfg("mnist1d", 60, 400, _cnn("relu", 2, 64)), {"overfitting"}, set(), fix=STOP),
    Case("mlp-overfit-xor", cfg("xor", 100, 200, _mlp("relu", 2, 512), data_noise=0.4), {"overfitting"},
         {"slow_convergence", "underfitting"}, fix=STOP),  # XOR starts on a saddle: a plateau first
    # unscaled inputs reaching the model
    Case("cancer-unstandardised", cfg("breast_cancer", 20, None, _mlp("relu", 2), data_standardize=False),
         {"unscaled_inputs"}, {"oscillating_loss", "slow_convergence", "dead_relu", "learning_rate_too_high",
                               "exploding_gradients"},  # a gradient scales with its input
         fix=["data.standardize=true"]),
    Case("scaled-moons-unstandardised", cfg("moons", 20, None, _mlp("relu", 2), data_standardize=False),
         {"unscaled_inputs"}, {"oscillating_loss", "slow_convergence", "dead_relu", "learning_rate_too_high",
                               "underfitting", "exploding_gradients"},  # a gradient scales with its input
         data="scaled_moons", fix=["data.standardize=true"]),
    # problems in the data
    Case("moons-nan-rows", cfg("moons", 5, None, _mlp("relu", 2)), {"bad_input"}, set(), data="nan_moons"),
    Case("digits-nan-rows", cfg("digits", 3, None, _mlp("relu", 2)), {"bad_input"}, set(), data="nan_digits"),
    Case("moons-leaky", cfg("moons", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(), data="leaky_moons"),
    Case("digits-leaky", cfg("digits", 3, None, _mlp("relu", 2)), {"data_leakage"}, set(), data="leaky_digits"),
    Case("blobs-imbalanced", cfg("blobs", 10, 2000, _mlp("relu", 2)), {"class_imbalance"}, set(),
         data="imbalanced_blobs"),
    Case("moons-imbalanced", cfg("moons", 10, 2000, _mlp("relu", 2)), {"class_imbalance"}, set(),
         data="imbalanced_moons"),
]

# written as healthy; relabelled in the eighth session (issue 18): 20 updates leave these at chance (training
# accuracy 0.113 and 0.105 on 512 training rows, the majority class 0.107, a linear model 0.52 in-sample): the
# end-of-run verdict's underfitting is there
SICK += [Case("gru-mnist1d", cfg("mnist1d", 4, 1000, {"name": "gru", "width": 32}), {"underfitting"},
              {"slow_convergence"}),
         Case("lstm-mnist1d", cfg("mnist1d", 4, 1000, {"name": "lstm", "width": 32}), {"underfitting"},
              {"slow_convergence"})]

HEALTHY: list[Case] = [Case(name, c) for name, c in [
    ("mlp-relu-moons", cfg("moons", 10, None, _mlp("relu", 3))),
    ("mlp-relu-circles", cfg("circles", 10, None, _mlp("relu", 3))),
    ("mlp-relu-spiral", cfg("spiral", 10, None, _mlp("relu", 3))),
    ("mlp-relu-blobs", cfg("blobs", 10, None, _mlp("relu", 2))),
    ("mlp-relu-xor", cfg("xor", 10, None, _mlp("relu", 2))),
    ("mlp-relu-cancer", cfg("breast_cancer", 10, None, _mlp("relu", 2))),
    ("mlp-relu-digits", HEALTHY_DIGITS),
    ("mlp-relu-mnist1d", HEALTHY_MLP),
    ("mlp-tanh-xavier-mnist1d", cfg("mnist1d", 6, 1500, _mlp("tanh", 3, init="xavier_normal"))),
    ("mlp-leaky-he-digits", cfg("digits", 6, None, _mlp("leaky_relu", 3, init="he_normal"))),
    ("mlp-elu-moons", cfg("moons", 10, None, _mlp("elu", 3))),
    ("mlp-gelu-spiral", cfg("spiral", 10, None, _mlp("gelu", 3))),
    ("mlp-batchnorm-sigmoid-6", cfg("mnist1d", 6, 1500, _mlp("sigmoid", 6, norm="batch"))),
    ("mlp-layernorm-mnist1d", cfg("mnist1d", 6, 1500, _mlp("relu", 3, norm="layer"))),
    ("mlp-residual-7", cfg("mnist1d", 6, 1500, _mlp("relu", 7, residual=True, norm="batch"))),
    ("mlp-sgd-momentum", cfg("mnist1d", 6, 1500, _mlp("relu", 3), {"name": "momentum", "lr": 0.05})),
    ("mlp-rmsprop-digits", cfg("digits", 6, None, _mlp("relu", 2), {"name": "rmsprop"})),
    ("mlp-adamw-moons", cfg("moons", 10, None, _mlp("relu", 3), {"name": "adamw"})),
    ("cnn-relu-mnist1d", HEALTHY_CNN),
    ("cnn-relu-digits", cfg("digits", 6, None, _cnn("relu", 2, kernel_size=3))),
    ("cnn-batchnorm-mnist1d", cfg("mnist1d", 6, 1500, _cnn("relu", 3, norm="batch"))),
    ("rnn-tanh-digits", cfg("digits", 6, None, {"name": "rnn", "activation": "tanh", "width": 32})),
    ("seq2seq-reverse", cfg("reverse", 6, 2000, {"name": "seq2seq", "attention": "additive"}, {"lr": 0.003})),
]]


def _standardize_off(c: dict[str, Any]) -> dict[str, Any]:
    if c.pop("data_standardize", True) is False:
        c["data"]["standardize"] = False
    if "data_noise" in c:
        c["data"]["noise"] = c.pop("data_noise")
    if "data_batch" in c:
        c["data"]["batch_size"] = c.pop("data_batch")
    return c


for case in SICK + HEALTHY:
    _standardize_off(case.config)


# ------------------------------------------------------------------ problems in the data

def _base(name: str, n: int | None = None) -> Data:
    return load_data(name, n_samples=n)


def _with_train(d: Data, x: torch.Tensor, y: torch.Tensor) -> Data:
    return Data(d.name, d.kind, Split(x, y), d.val, d.test, d.n_classes, d.mean, d.std)


def _poisoned(name: str, rows: list[int], column: int, value: float) -> Data:
    """The training split with ``value`` (NaN, inf) in one feature of the given rows."""
    d = _base(name)
    x = d.train.x.clone()
    x.view(len(x), -1)[rows, column] = value
    return _with_train(d, x, d.train.y)


def _nan(name: str) -> Data:
    return _poisoned(name, [5, 50, 120], 0, float("nan"))


def _leaky(name: str) -> Data:
    d = _base(name)
    k = len(d.val) // 4  # a quarter of validation copied from training
    val = Split(torch.cat([d.train.x[:k], d.val.x[k:]]), torch.cat([d.train.y[:k], d.val.y[k:]]))
    return Data(d.name, d.kind, d.train, val, d.test, d.n_classes, d.mean, d.std)


def _imbalanced(name: str) -> Data:
    """Class 1 cut to 3% of its rows in every split (an imbalanced data set, not only its training part)."""
    d = _base(name, 2000)

    def cut(split: Split) -> Split:
        idx = torch.cat([torch.nonzero(split.y == c).flatten()[: (max(len(split.y) // 100, 2) if c == 1 else None)]
                         for c in range(d.n_classes)])
        return Split(split.x[idx], split.y[idx])

    return Data(d.name, d.kind, cut(d.train), cut(d.val), cut(d.test), d.n_classes, d.mean, d.std)


def _scaled(name: str, scale: torch.Tensor) -> Data:
    """Every split's features multiplied by ``scale`` (one factor per feature), not standardised."""
    d = _base(name)
    s = lambda split: Split(split.x * scale, split.y)  # noqa: E731
    return Data(d.name, d.kind, s(d.train), s(d.val), s(d.test), d.n_classes, d.mean * scale, d.std * scale)


def _scaled_moons() -> Data:
    return _scaled("moons", torch.tensor([1000.0, 0.01]))


DATA = {"nan_moons": lambda: _nan("moons"), "nan_digits": lambda: _nan("digits"),
        "leaky_moons": lambda: _leaky("moons"), "leaky_digits": lambda: _leaky("digits"),
        "imbalanced_blobs": lambda: _imbalanced("blobs"), "imbalanced_moons": lambda: _imbalanced("moons"),
        "scaled_moons": _scaled_moons}


# ------------------------------------------------------------------ held out
# Written after the rules were final and run once, untuned (python benchmarks/doctor/run.py --held-out):
# new data sets, depths, activations and optimizers for the same faults. Their score is the honest one.

HELD_OUT: list[Case] = [
    Case("ho-mlp-sigmoid-7-cancer", cfg("breast_cancer", 5, None, _mlp("sigmoid", 7), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0"),
    Case("ho-cnn-tanh-tiny-init-digits", cfg("digits", 4, None, _cnn("tanh", 4, kernel_size=3, init="normal",
                                                                     init_options={"std": 0.01}), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.conv0"),
    Case("ho-mlp-sgd-lr40-circles", cfg("circles", 4, None, _mlp("relu", 4), SGD(40.0)),
         {"nan_loss"}, NAN_ALLOW | {"divergence"}, cause="learning_rate_too_high"),
    Case("ho-lstm-sgd-lr1e-7-digits", cfg("digits", 7, None, {"name": "lstm", "width": 16}, SGD(1e-7)),
         {"learning_rate_too_low"}, PLAIN["plateau"]),
    Case("ho-mlp-elu-huge-init-9", cfg("moons", 3, None, _mlp("elu", 9, init="normal", init_options={"std": 1.5}),
                                       SGD(0.01)),
         {"nan_loss"}, NAN_ALLOW | {"divergence"}, cause="exploding_gradients"),
    Case("ho-mlp-tanh-big-init-cancer", cfg("breast_cancer", 4, None, _mlp("tanh", 2, init="normal",
                                                                         init_options={"std": 3.0}), SGD(0.01)),
         {"saturation"}, {"vanishing_gradients", "slow_convergence", "underfitting", "bad_initialisation"}),
    Case("ho-cnn-overfit-digits", cfg("digits", 100, 250, _cnn("relu", 2, 128, kernel_size=3)), {"overfitting"},
         set()),
    Case("ho-naive-ce-spiral", cfg("spiral", 3, None, _mlp("relu", 3, init="normal", init_options={"std": 1.0}),
                                   SGD(0.01), loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss"),
    Case("ho-mlp-sgd-lr4-dead-digits", cfg("digits", 5, None, _mlp("relu", 3), SGD(4.0)),
         {"dead_relu"}, {"learning_rate_too_high", "slow_convergence", "underfitting", "divergence",
                         "oscillating_loss", "nan_loss"}),
    Case("ho-mlp-selu-blobs", cfg("blobs", 10, None, _mlp("selu", 3))),
    Case("ho-cnn-gelu-mnist1d", cfg("mnist1d", 5, 1500, _cnn("gelu", 3))),
    Case("ho-lstm-digits", cfg("digits", 5, None, {"name": "lstm", "width": 32})),
    Case("ho-mlp-maxout-spiral", cfg("spiral", 10, None, _mlp("maxout", 3))),
    Case("ho-adagrad-moons", cfg("moons", 10, None, _mlp("relu", 3), {"name": "adagrad"})),
    Case("ho-nesterov-digits", cfg("digits", 6, None, _mlp("relu", 2), {"name": "nesterov", "lr": 0.05})),
]


# ------------------------------------------------------------------ held out, second set
# Written in the fifth session before any of them was run, and committed before the first run
# (python benchmarks/doctor/run.py --held-out-2): other data sets, architectures and optimizers than
# both sets above. Labels say what the injected fault does by its mechanism, not what was seen;
# `fix` undoes the fault, so repair is measured on unseen cases too. Not to be tuned on.

DATA.update({"nan_circles": lambda: _nan("circles"), "leaky_blobs": lambda: _leaky("blobs"),
             "imbalanced_circles": lambda: _imbalanced("circles")})
ADAM = {"name": "adam", "lr": 0.001}

HELD_OUT_2: list[Case] = [
    # a product of tanh derivatives on a tiny start: the first layers' gradients vanish
    Case("ho2-mlp-tanh-10-tiny-circles", cfg("circles", 10, None, _mlp("tanh", 10, init="normal",
                                                                       init_options={"std": 0.05}), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0",
         fix=["model.init=xavier_normal", "model.init_options={}"]),
    # sigmoid's derivative is at most 0.25 per layer: six conv layers
    Case("ho2-cnn-sigmoid-6-mnist1d", cfg("mnist1d", 10, 2000, _cnn("sigmoid", 6), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.conv0", fix=RELU),
    # steps far larger than the weights
    Case("ho2-mlp-sgd-lr60-blobs", cfg("blobs", 10, None, _mlp("relu", 3), SGD(60.0)),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.1"]),
    Case("ho2-rmsprop-lr1-cancer", cfg("breast_cancer", 10, None, _mlp("relu", 2), {"name": "rmsprop", "lr": 1.0}),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.001"]),
    # Adam's step is ~lr per weight: 1e-8 against weights of ~0.1 moves nothing
    Case("ho2-adam-lr1e-8-cancer", cfg("breast_cancer", 10, None, _mlp("relu", 2), {"name": "adam", "lr": 1e-8}),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=["optim.lr=0.001"]),
    # the variance grows 4x per ReLU layer at std 2 (He's is 2/fan_in): the signal explodes with depth
    Case("ho2-mlp-relu-huge-init-digits", cfg("digits", 10, None, _mlp("relu", 5, init="normal",
                                                                       init_options={"std": 2.0}), SGD(0.01)),
         {"bad_initialisation"}, NAN_ALLOW | {"divergence", "learning_rate_too_high", "oscillating_loss",
                                              "slow_convergence", "underfitting", "dead_relu",
                                              # allowed after the first run, which counted it against precision:
                                              # the loss does go NaN (logits ~1e5, step 3), a label error
                                              "nan_loss"}, fix=INIT),
    # sigmoid pre-activations of spread ~10: outputs pinned at 0 and 1
    Case("ho2-mlp-sigmoid-big-init-moons", cfg("moons", 10, None, _mlp("sigmoid", 2, init="normal",
                                                                       init_options={"std": 4.0}), SGD(0.1)),
         {"saturation"}, {"vanishing_gradients", "slow_convergence", "underfitting", "bad_initialisation"},
         fix=["model.init=xavier_normal", "model.init_options={}"]),
    # softmax of logits ~100 apart underflows to 0, and log(0) = -inf
    Case("ho2-cnn-naive-ce-mnist1d", cfg("mnist1d", 3, 1500, _cnn("relu", 2, init="normal",
                                                                  init_options={"std": 1.0}), SGD(0.01),
                                         loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss"),
    # a wide net on 150 digits for 150 epochs: the validation loss turns up while training falls
    Case("ho2-mlp-leaky-overfit-digits", cfg("digits", 150, 250, _mlp("leaky_relu", 2, 512), ADAM),
         {"overfitting"}, set(), fix=STOP),
    # breast-cancer features span 0.001 to 4000 when not standardised
    Case("ho2-adam-unstandardised-cancer", cfg("breast_cancer", 10, None, _mlp("relu", 2), ADAM,
                                               data_standardize=False),
         {"unscaled_inputs"}, {"oscillating_loss", "slow_convergence", "dead_relu", "learning_rate_too_high",
                               "underfitting", "exploding_gradients"}, fix=["data.standardize=true"]),
    Case("ho2-circles-nan-rows", cfg("circles", 5, None, _mlp("relu", 2)), {"bad_input"}, set(), data="nan_circles"),
    Case("ho2-blobs-leaky", cfg("blobs", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(), data="leaky_blobs"),
    Case("ho2-circles-imbalanced", cfg("circles", 10, 2000, _mlp("relu", 2)), {"class_imbalance"}, set(),
         data="imbalanced_circles"),
    # healthy: nothing above info
    Case("ho2-cnn-leaky-digits", cfg("digits", 10, None, _cnn("leaky_relu", 2, kernel_size=3), ADAM)),
    Case("ho2-mlp-tanh-xavier-circles", cfg("circles", 20, None, _mlp("tanh", 3, init="xavier_normal"),
                                            {"name": "momentum", "lr": 0.05})),
    Case("ho2-gru-adam-digits", cfg("digits", 8, None, {"name": "gru", "width": 32}, ADAM)),
    Case("ho2-mlp-layernorm-spiral", cfg("spiral", 20, None, _mlp("relu", 3, norm="layer"), ADAM)),
    Case("ho2-mlp-elu-rmsprop-cancer", cfg("breast_cancer", 10, None, _mlp("elu", 2), {"name": "rmsprop",
                                                                                       "lr": 0.001})),
    Case("ho2-cnn-groupnorm-mnist1d", cfg("mnist1d", 5, 1500, _cnn("relu", 3, norm="group",
                                                                   norm_options={"groups": 4}), ADAM)),
    # depth 11, not 10 as first written: a residual MLP is a stem and blocks of two (the first run stopped there)
    Case("ho2-mlp-residual-11-moons", cfg("moons", 10, None, _mlp("relu", 11, residual=True), ADAM)),
    Case("ho2-logistic-blobs", cfg("blobs", 10, None, {"name": "logistic"}, SGD(0.1))),
]
for case in HELD_OUT_2:
    _standardize_off(case.config)


# ------------------------------------------------------------------ held out, third set
# Written in the sixth session before any change of that session and before any of them was run,
# committed unrun (python benchmarks/doctor/run.py --held-out-3). Same rules as the second set: labels
# by mechanism, `fix` undoes the fault; not to be tuned on. Longer runs than the second set's (a
# repair's fixed costs are a smaller share), and faults that start late (a warmup to a rate too high).

def _inf(name: str) -> Data:
    return _poisoned(name, [3, 77], -1, float("inf"))


def _test_leak(name: str) -> Data:
    d = _base(name)
    k = len(d.test) // 5  # a fifth of test copied from training
    test = Split(torch.cat([d.train.x[-k:], d.test.x[k:]]), torch.cat([d.train.y[-k:], d.test.y[k:]]))
    return Data(d.name, d.kind, d.train, d.val, test, d.n_classes, d.mean, d.std)


DATA.update({"inf_spiral": lambda: _inf("spiral"), "test_leak_digits": lambda: _test_leak("digits"),
             "imbalanced_spiral": lambda: _imbalanced("spiral")})
TANH_FIX = ["model.init=xavier_normal", "model.init_options={}"]

HELD_OUT_3: list[Case] = [
    # seven sigmoid layers: a product of derivatives of at most 0.25
    Case("ho3-mlp-sigmoid-7-circles", cfg("circles", 30, 2000, _mlp("sigmoid", 7), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0", fix=RELU),
    # tanh convolutions started at std 0.01: the signal and its gradient shrink layer by layer
    Case("ho3-cnn-tanh-5-tiny-init-mnist1d", cfg("mnist1d", 10, 3000, _cnn("tanh", 5, init="normal",
                                                                           init_options={"std": 0.01}), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.conv0", fix=TANH_FIX),
    # plain SGD at 30 on digits: each step is far larger than the weights
    Case("ho3-mlp-sgd-lr30-digits-wide", cfg("digits", 15, None, _mlp("relu", 3, 256), SGD(30.0)),
         {"nan_loss"}, NAN_ALLOW | {"divergence", "oscillating_loss"}, cause="learning_rate_too_high",
         fix=["optim.lr=0.1"]),
    # a warmup that climbs to 20: fine for the first epochs, then the steps outgrow the weights
    Case("ho3-warmup-to-lr20-moons", cfg("moons", 30, 3000, _mlp("relu", 3), SGD(20.0),
                                         schedule={"name": "none", "warmup_epochs": 25}),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.1", "schedule.warmup_epochs=0"]),
    # AdamW moves each weight by ~lr: 1e-7 against weights of ~0.1
    Case("ho3-adamw-lr1e-7-spiral", cfg("spiral", 30, None, _mlp("relu", 3), {"name": "adamw", "lr": 1e-7}),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=["optim.lr=0.001"]),
    Case("ho3-lstm-sgd-lr1e-6-digits", cfg("digits", 15, None, {"name": "lstm", "width": 32}, SGD(1e-6)),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=RNN_LR),
    # naive softmax then log, on logits ~50 apart: log(0)
    Case("ho3-mlp-naive-ce-blobs", cfg("blobs", 5, None, _mlp("relu", 3, init="normal", init_options={"std": 1.5}),
                                       SGD(0.01), loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss"),
    # SELU needs LeCun's std 1/sqrt(fan_in) (0.125 at width 64): std 1 makes the signal grow 8x a layer
    Case("ho3-mlp-selu-8-big-init-blobs", cfg("blobs", 10, None, _mlp("selu", 8, init="normal",
                                                                      init_options={"std": 1.0}), SGD(0.01)),
         {"bad_initialisation"}, NAN_ALLOW | {"nan_loss", "divergence", "learning_rate_too_high", "oscillating_loss",
                                              "slow_convergence", "underfitting"},
         fix=["model.init=default", "model.init_options={}"]),
    # tanh with pre-activations of spread ~20: outputs pinned at -1 and 1
    Case("ho3-mlp-tanh-big-init-digits", cfg("digits", 15, None, _mlp("tanh", 3, init="normal",
                                                                      init_options={"std": 2.5}), SGD(0.05)),
         {"saturation"}, {"vanishing_gradients", "slow_convergence", "underfitting", "bad_initialisation"},
         fix=TANH_FIX),
    # a 3 x 512 MLP on 200 MNIST-1D rows for 200 epochs: it learns the training set by heart
    Case("ho3-mlp-overfit-mnist1d-200", cfg("mnist1d", 200, 200, _mlp("relu", 3, 512), ADAM),
         {"overfitting"}, set(), fix=STOP),
    # momentum SGD on unstandardised breast-cancer features (0.001 to 4000)
    Case("ho3-momentum-unstandardised-cancer", cfg("breast_cancer", 20, None, _mlp("relu", 2),
                                                   {"name": "momentum", "lr": 0.01}, data_standardize=False),
         {"unscaled_inputs"}, {"oscillating_loss", "slow_convergence", "dead_relu", "learning_rate_too_high",
                               "underfitting", "exploding_gradients", "nan_loss", "divergence"},
         fix=["data.standardize=true"]),
    Case("ho3-spiral-inf-rows", cfg("spiral", 5, None, _mlp("relu", 2)), {"bad_input"}, set(), data="inf_spiral"),
    Case("ho3-digits-test-leak", cfg("digits", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(),
         data="test_leak_digits"),
    Case("ho3-spiral-imbalanced", cfg("spiral", 10, 2000, _mlp("relu", 3)), {"class_imbalance"}, set(),
         data="imbalanced_spiral"),
    # healthy: nothing above info
    Case("ho3-mlp-nesterov-xavier-digits", cfg("digits", 15, None, _mlp("tanh", 2, init="xavier_normal"),
                                               {"name": "nesterov", "lr": 0.05})),
    Case("ho3-cnn-elu-digits", cfg("digits", 10, None, _cnn("elu", 2, kernel_size=3), ADAM)),
    # written as healthy; a label error found by the first run, corrected and marked: this LSTM does not learn in
    # 6 epochs (training loss 2.3085 -> 2.2970, accuracy 0.115): the plateau the doctor reports is there
    Case("ho3-lstm-adam-mnist1d", cfg("mnist1d", 6, 1500, {"name": "lstm", "width": 32}, {"name": "adam",
                                                                                         "lr": 0.003}),
         {"slow_convergence"}, {"underfitting"}),
    Case("ho3-mlp-sigmoid-2-moons", cfg("moons", 30, None, _mlp("sigmoid", 2), SGD(0.5))),
    Case("ho3-mlp-gelu-adamw-cancer", cfg("breast_cancer", 20, None, _mlp("gelu", 3), {"name": "adamw",
                                                                                      "lr": 0.001})),
    Case("ho3-mlp-tanh-batchnorm-8-spiral", cfg("spiral", 20, None, _mlp("tanh", 8, norm="batch"), ADAM)),
    Case("ho3-cnn-momentum-cosine-mnist1d", cfg("mnist1d", 10, 3000, _cnn("relu", 3), {"name": "momentum",
                                                                                     "lr": 0.05},
                                                schedule={"name": "cosine"})),
]
for case in HELD_OUT_3:
    _standardize_off(case.config)


# ------------------------------------------------------------------ held out, fourth set
# Written in the seventh session before any change of that session and before any of them was run,
# committed unrun (python benchmarks/doctor/run.py --held-out-4). Same rules as the second and third
# sets: labels by mechanism, `fix` undoes the fault; not to be tuned on. New here: the XOR and
# make_classification data sets, Elman RNNs, Adagrad/Adadelta, weight norm and residual CNNs.

def _nan_rows(name: str) -> Data:
    return _poisoned(name, [0, 9, 200, 201], 1, float("nan"))


DATA.update({"nan_xor": lambda: _nan_rows("xor"), "leaky_spiral": lambda: _leaky("spiral")})

HELD_OUT_4: list[Case] = [
    # six sigmoid layers on XOR: derivatives of at most 0.25 multiplied layer after layer
    Case("ho4-mlp-sigmoid-6-xor", cfg("xor", 20, 2000, _mlp("sigmoid", 6), SGD(0.1)),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0", fix=RELU),
    # five sigmoid convolutions with momentum: the same product, in a CNN
    Case("ho4-cnn-sigmoid-5-momentum-mnist1d", cfg("mnist1d", 10, 3000, _cnn("sigmoid", 5),
                                                   {"name": "momentum", "lr": 0.05}),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.conv0", fix=RELU),
    # eight leaky-ReLU layers started at std 0.01: the signal collapses with depth at step 0
    Case("ho4-mlp-leaky-8-tiny-init-circles", cfg("circles", 20, 2000, _mlp("leaky_relu", 8, init="normal"),
                                                  SGD(0.1)),
         {"vanishing_gradients", "bad_initialisation"}, VANISH_ALLOW | {"dead_relu"}, layer="net.hidden0",
         main="vanishing_gradients", fix=INIT),
    # Adagrad's first step is ~lr per weight: 10 against weights of ~0.5
    Case("ho4-adagrad-lr10-moons", cfg("moons", 15, 2000, _mlp("relu", 3), {"name": "adagrad", "lr": 10.0}),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.05"]),
    # momentum SGD at 5 on XOR: steps (amplified ~10x by the momentum) far larger than the weights
    Case("ho4-momentum-lr5-xor", cfg("xor", 15, 2000, _mlp("relu", 3), {"name": "momentum", "lr": 5.0}),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.05"]),
    # Nesterov at 1e-6: steps of ~1e-6 of the weights
    Case("ho4-nesterov-lr1e-6-mnist1d", cfg("mnist1d", 10, 3000, _mlp("relu", 3), {"name": "nesterov", "lr": 1e-6}),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=["optim.lr=0.05"]),
    Case("ho4-gru-adagrad-lr1e-6-digits", cfg("digits", 10, None, {"name": "gru", "width": 32},
                                              {"name": "adagrad", "lr": 1e-6}),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=["optim.lr=0.05"]),
    # softmax then log on a CNN whose logits start ~100 apart: log(0)
    Case("ho4-cnn-naive-ce-digits", cfg("digits", 5, None, _cnn("relu", 2, kernel_size=3, init="normal",
                                                                init_options={"std": 1.0}), SGD(0.01),
                                        loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss"),
    # GELU layers at std 1 (He's is ~0.18 at width 64): the signal grows ~5x a layer from step 0
    Case("ho4-mlp-gelu-8-big-init-circles", cfg("circles", 10, 2000, _mlp("gelu", 8, init="normal",
                                                                          init_options={"std": 1.0}), SGD(0.01)),
         {"bad_initialisation"}, NAN_ALLOW | {"nan_loss", "divergence", "learning_rate_too_high", "oscillating_loss",
                                              "slow_convergence", "underfitting", "dead_relu"},
         fix=["model.init=default", "model.init_options={}"]),
    # an Elman ReLU RNN whose recurrent matrix starts at std 0.5 (spectral radius ~6): the state and its
    # gradient grow ~6x per time step over the digits' 8 rows
    Case("ho4-rnn-relu-big-init-digits", cfg("digits", 10, None, {"name": "rnn", "activation": "relu", "width": 32,
                                                                  "init": "normal", "init_options": {"std": 0.5}},
                                             SGD(0.01)),
         {"exploding_gradients"}, NAN_ALLOW | {"nan_loss", "divergence", "learning_rate_too_high",
                                               "oscillating_loss", "slow_convergence", "underfitting"},
         fix=["model.init=orthogonal", "model.init_options={}"]),
    # a 3 x 256 MLP on 150 spiral rows (noisy, overlapping arms) for 300 epochs: it learns the noise
    Case("ho4-mlp-overfit-spiral-150", cfg("spiral", 300, 150, _mlp("relu", 3, 256), ADAM), {"overfitting"}, set(),
         fix=STOP),
    Case("ho4-xor-nan-rows", cfg("xor", 5, None, _mlp("relu", 2)), {"bad_input"}, set(), data="nan_xor"),
    Case("ho4-spiral-leaky", cfg("spiral", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(), data="leaky_spiral"),
    # make_classification with weights 0.01 / 0.05 / 0.94: imbalanced by construction
    Case("ho4-imbalanced-data", cfg("imbalanced", 10, None, _mlp("relu", 2)), {"class_imbalance"}, set()),
    # healthy: nothing above info
    Case("ho4-rnn-tanh-adam-digits", cfg("digits", 10, None, {"name": "rnn", "width": 64}, {"name": "adam",
                                                                                           "lr": 0.003})),
    Case("ho4-mlp-adadelta-moons", cfg("moons", 20, None, _mlp("relu", 3), {"name": "adadelta", "lr": 1.0})),
    # depth 5, not 4 as first written: a residual CNN is a stem and blocks of two (the build check before the run)
    Case("ho4-cnn-residual-mnist1d", cfg("mnist1d", 8, 3000, _cnn("relu", 5, residual=True), ADAM)),
    Case("ho4-mlp-weightnorm-xor", cfg("xor", 20, None, _mlp("relu", 3, norm="weight"), ADAM)),
    Case("ho4-mlp-maxout-momentum-cancer", cfg("breast_cancer", 20, None, _mlp("maxout", 2),
                                               {"name": "momentum", "lr": 0.01})),
    Case("ho4-mlp-leaky-adagrad-blobs", cfg("blobs", 15, None, _mlp("leaky_relu", 3), {"name": "adagrad",
                                                                                        "lr": 0.05})),
    Case("ho4-logistic-digits", cfg("digits", 20, None, {"name": "logistic"}, SGD(0.1))),
    Case("ho4-mlp-selu-spiral", cfg("spiral", 30, None, _mlp("selu", 3), ADAM)),
]
for case in HELD_OUT_4:
    _standardize_off(case.config)


# ------------------------------------------------------------------ held out, fifth set
# Written in the seventh session after this session's two rules and before any of them was run,
# committed unrun (python benchmarks/doctor/run.py --held-out-5). Same rules as the second to fourth
# sets: labels by mechanism, `fix` undoes the fault; not to be tuned on.

def _bad_labels(name: str) -> Data:
    d = _base(name)
    y = d.train.y.clone()
    y[[4, 40, 400]] = d.n_classes  # one past the last class
    return _with_train(d, d.train.x, y)


def _one_column_scaled(name: str, factor: float = 1e4) -> Data:
    scale = torch.ones(_base(name).train.x.shape[1:])
    scale.view(-1)[0] = factor
    return _scaled(name, scale)


DATA.update({"bad_labels_digits": lambda: _bad_labels("digits"), "leaky_cancer": lambda: _leaky("breast_cancer"),
             "imbalanced_xor": lambda: _imbalanced("xor"), "scaled_blobs": lambda: _one_column_scaled("blobs")})

HELD_OUT_5: list[Case] = [
    # an Elman ReLU RNN on MNIST-1D's 40 steps, recurrent matrix at std 0.3 (spectral radius ~2.4 at width 64):
    # the state and the gradient through time grow ~1.7x a step
    Case("ho5-rnn-relu-big-init-mnist1d", cfg("mnist1d", 6, 2000, {"name": "rnn", "activation": "relu", "width": 64,
                                                                   "init": "normal", "init_options": {"std": 0.3}},
                                              SGD(0.01)),
         {"exploding_gradients"}, NAN_ALLOW | {"nan_loss", "divergence", "learning_rate_too_high",
                                               "oscillating_loss", "slow_convergence", "underfitting"},
         fix=["model.init=orthogonal", "model.init_options={}"]),
    # Adam's first step is lr per weight (bias-corrected): 1.0 against weights of ~0.1
    Case("ho5-adam-lr1-digits", cfg("digits", 10, None, _mlp("relu", 3), {"name": "adam", "lr": 1.0}),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.001"]),
    # plain SGD at 25 on breast cancer: steps far larger than the weights
    Case("ho5-sgd-lr25-cancer", cfg("breast_cancer", 10, None, _mlp("relu", 2), SGD(25.0)),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}, fix=["optim.lr=0.1"]),
    # seven sigmoid layers under Adagrad: the product of derivatives of at most 0.25 does not depend on the optimizer
    Case("ho5-mlp-sigmoid-7-adagrad-blobs", cfg("blobs", 15, 2000, _mlp("sigmoid", 7), {"name": "adagrad",
                                                                                         "lr": 0.05}),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0", fix=RELU),
    # ten ELU layers started at std 0.01: the signal collapses with depth at step 0, and its gradient with it
    Case("ho5-mlp-elu-10-tiny-init-moons", cfg("moons", 15, 2000, _mlp("elu", 10, init="normal"), SGD(0.1)),
         {"vanishing_gradients", "bad_initialisation"}, VANISH_ALLOW | {"dead_relu"}, layer="net.hidden0",
         main="vanishing_gradients", fix=INIT),
    # sigmoid pre-activations of spread ~10 on XOR: outputs pinned at 0 and 1
    Case("ho5-mlp-sigmoid-big-init-xor", cfg("xor", 15, 2000, _mlp("sigmoid", 2, init="normal",
                                                                   init_options={"std": 5.0}), SGD(0.1)),
         {"saturation"}, {"vanishing_gradients", "slow_convergence", "underfitting", "bad_initialisation"},
         fix=TANH_FIX),
    # Adadelta's first steps are ~lr * sqrt(eps) / RMS(g): at 1e-4, ~1e-7 of the weights
    Case("ho5-adadelta-lr1e-4-spiral", cfg("spiral", 20, None, _mlp("relu", 3), {"name": "adadelta", "lr": 1e-4}),
         {"learning_rate_too_low"}, PLAIN["plateau"], fix=["optim.lr=1.0"]),
    # softmax then log on logits ~100 apart: log(0)
    Case("ho5-mlp-naive-ce-xor", cfg("xor", 5, None, _mlp("relu", 3, init="normal", init_options={"std": 2.0}),
                                     SGD(0.01), loss="naive_cross_entropy"),
         {"nan_loss"}, NAN_ALLOW, cause="log_of_zero", layer="loss"),
    # a 3 x 512 MLP on 150 breast-cancer rows for 300 epochs at 3e-3: confident mistakes on validation grow
    Case("ho5-mlp-overfit-cancer-150", cfg("breast_cancer", 300, 150, _mlp("relu", 3, 512),
                                           {"name": "adam", "lr": 0.003}), {"overfitting"}, set(), fix=STOP),
    # one feature 10000x the other, not standardised
    Case("ho5-blobs-one-column-scaled", cfg("blobs", 10, None, _mlp("relu", 2), SGD(0.01), data_standardize=False),
         {"unscaled_inputs"}, {"oscillating_loss", "slow_convergence", "dead_relu", "learning_rate_too_high",
                               "underfitting", "exploding_gradients", "nan_loss", "divergence"},
         data="scaled_blobs", fix=["data.standardize=true"]),
    Case("ho5-digits-bad-labels", cfg("digits", 5, None, _mlp("relu", 2)), {"bad_input"}, set(),
         data="bad_labels_digits"),
    Case("ho5-cancer-leaky", cfg("breast_cancer", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(),
         data="leaky_cancer"),
    Case("ho5-xor-imbalanced", cfg("xor", 10, 2000, _mlp("relu", 3)), {"class_imbalance"}, set(),
         data="imbalanced_xor"),
    # healthy: nothing above info
    Case("ho5-lstm-adam-digits-64", cfg("digits", 10, None, {"name": "lstm", "width": 64}, {"name": "adam",
                                                                                          "lr": 0.003})),
    Case("ho5-mlp-gelu-nesterov-moons", cfg("moons", 20, None, _mlp("gelu", 3), {"name": "nesterov", "lr": 0.05})),
    Case("ho5-cnn-batchnorm-adamw-digits", cfg("digits", 8, None, _cnn("relu", 2, kernel_size=3, norm="batch"),
                                               {"name": "adamw", "lr": 0.001})),
    Case("ho5-mlp-elu-adagrad-circles", cfg("circles", 20, None, _mlp("elu", 3), {"name": "adagrad", "lr": 0.05})),
    Case("ho5-mlp-tanh-rmsprop-spiral", cfg("spiral", 30, None, _mlp("tanh", 3), {"name": "rmsprop",
                                                                                  "lr": 0.001})),
    Case("ho5-seq2seq-copy", cfg("copy", 6, 2000, {"name": "seq2seq"}, {"name": "adam", "lr": 0.003})),
    Case("ho5-logistic-cancer", cfg("breast_cancer", 20, None, {"name": "logistic"}, SGD(0.1))),
    # written as healthy; a label error found by the first complete run, corrected and marked: this GRU does not
    # learn in 8 epochs (training loss 2.3065 -> 2.3020, accuracy 0.11): the plateau the doctor reports is there
    Case("ho5-gru-momentum-mnist1d", cfg("mnist1d", 8, 3000, {"name": "gru", "width": 64},
                                         {"name": "momentum", "lr": 0.05}), {"slow_convergence"}, {"underfitting"}),
]
for case in HELD_OUT_5:
    _standardize_off(case.config)


# ------------------------------------------------------------------ held out, sixth set (issue 18)
# Written in the eighth session before any change of that session and before any of them was run,
# committed unrun (python benchmarks/doctor/run.py --held-out-6); the faults and where they come from
# are in held_out_6.py. Same rules as the second to fifth sets: labels by mechanism; not to be tuned on.

from held_out_6 import DATA_6  # noqa: E402

DATA.update(DATA_6)
SHRUNK = {"underfitting", "slow_convergence"}  # a fault that shrinks the loss's gradient makes training crawl
SCALE_ALLOW = {"oscillating_loss", "slow_convergence", "dead_relu", "learning_rate_too_high", "underfitting",
               "exploding_gradients", "divergence", "nan_loss"}  # a gradient scales with its input
BN2_ALLOW = {"oscillating_loss", "slow_convergence", "underfitting", "vanishing_gradients"}


def _custom(name: str, custom: str, expect: set[str], allow: set[str] | None = None, **kw: Any) -> Case:
    return Case(name, {}, expect, allow or set(), custom=custom, **kw)


HELD_OUT_6: list[Case] = [
    # the model and the loss (the lint)
    _custom("ho6-softmax-before-ce-mnist1d", "softmax_before_ce_mnist1d", {"double_softmax"},
            SHRUNK | {"small_output_gradient"}),
    _custom("ho6-softmax-before-ce-cnn-digits", "softmax_before_ce_cnn_digits", {"double_softmax"},
            SHRUNK | {"small_output_gradient"}),
    _custom("ho6-sigmoid-mse-mnist1d", "sigmoid_mse_mnist1d", {"small_output_gradient"}, SHRUNK | {"saturation"}),
    Case("ho6-sigmoid-mse-config-digits", cfg("digits", 20, None, _mlp("relu", 2), SGD(0.1), loss="mse",
                                              loss_options={"output": "sigmoid"}),
         {"small_output_gradient"}, SHRUNK),
    Case("ho6-softmax-mse-config-mnist1d", cfg("mnist1d", 20, N, _mlp("relu", 3), SGD(0.1), loss="mse"),
         {"small_output_gradient"}, SHRUNK),
    _custom("ho6-output-width-16-mnist1d", "output_width_16_mnist1d", {"output_width_mismatch"}),
    _custom("ho6-sum-reduction-sgd-mnist1d", "sum_reduction_sgd_mnist1d", {"loss_sum_reduction"},
            UNSTABLE | {"divergence"}),
    _custom("ho6-sum-reduction-momentum-moons", "sum_reduction_momentum_moons", {"loss_sum_reduction"},
            UNSTABLE | {"divergence"}),
    _custom("ho6-stacked-linear-spiral", "stacked_linear_spiral", {"missing_nonlinearity"}, SHRUNK),
    _custom("ho6-stacked-linear-dropout-moons", "stacked_linear_dropout_moons", {"missing_nonlinearity"}, SHRUNK),
    _custom("ho6-weight-decay-on-norms-mnist1d", "weight_decay_on_norms_mnist1d", {"weight_decay_on_norms"}, SHRUNK),
    _custom("ho6-bn-batch-2-cnn-digits", "bn_batch_2_cnn_digits", {"small_batch_norm"}, BN2_ALLOW),
    Case("ho6-bn-batch-2-mlp-mnist1d", cfg("mnist1d", 3, 1000, _mlp("relu", 3, norm="batch"), SGD(0.01),
                                           data_batch=2), {"small_batch_norm"}, BN2_ALLOW),
    # dropout written as a keep probability
    Case("ho6-dropout-0.9-mnist1d", cfg("mnist1d", 15, N, _mlp("relu", 3, dropout=0.9)), {"dropout_too_high"},
         SHRUNK),
    Case("ho6-dropout-0.8-cnn-digits", cfg("digits", 15, None, _cnn("relu", 2, kernel_size=3, dropout=0.8)),
         {"dropout_too_high"}, SHRUNK),
    # the data's absolute scale
    Case("ho6-images-0-255-digits", cfg("digits", 15, None, _mlp("relu", 2), ADAM, data_standardize=False),
         {"unscaled_inputs"}, SCALE_ALLOW, data="digits_0_255"),
    Case("ho6-offset-30-mnist1d", cfg("mnist1d", 15, 3000, _mlp("relu", 3), SGD(0.05), data_standardize=False),
         {"unscaled_inputs"}, SCALE_ALLOW, data="mnist1d_offset"),
    Case("ho6-offset-200-blobs", cfg("blobs", 15, None, _mlp("relu", 2), ADAM, data_standardize=False),
         {"unscaled_inputs"}, SCALE_ALLOW, data="blobs_offset"),
    # near-duplicates across the splits
    Case("ho6-smote-before-split-digits", cfg("digits", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(),
         data="smote_digits"),
    Case("ho6-smote-before-split-cancer", cfg("breast_cancer", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(),
         data="smote_cancer"),
    Case("ho6-noisy-copies-moons", cfg("moons", 5, None, _mlp("relu", 2)), {"data_leakage"}, set(),
         data="noisy_copies_moons"),
    Case("ho6-noisy-copies-mnist1d", cfg("mnist1d", 5, None, _mlp("relu", 3)), {"data_leakage"}, set(),
         data="noisy_copies_mnist1d"),
    # underfitting that improves slowly to the end of the budget
    Case("ho6-slow-sgd-mnist1d", cfg("mnist1d", 20, N, _mlp("relu", 3), SGD(0.005)), {"underfitting"},
         {"slow_convergence", "learning_rate_too_low"}),
    Case("ho6-slow-momentum-cnn-mnist1d", cfg("mnist1d", 15, N, _cnn("relu", 3), {"name": "momentum", "lr": 0.001}),
         {"underfitting"}, {"slow_convergence", "learning_rate_too_low"}),
    Case("ho6-label-noise-slow-sgd-spiral", cfg("spiral", 20, None, _mlp("relu", 3), SGD(0.01)), {"underfitting"},
         {"slow_convergence", "learning_rate_too_low"}, data="spiral_label_noise_30"),
    # Adam's steps stay far too large (not only its first)
    Case("ho6-adam-lr0.5-circles", cfg("circles", 15, 2000, _mlp("relu", 3), {"name": "adam", "lr": 0.5}),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}),
    # NaN from a rate far too high
    Case("ho6-sgd-lr50-blobs", cfg("blobs", 10, None, _mlp("relu", 3), SGD(50.0)), {"nan_loss"},
         NAN_ALLOW | {"divergence"}, cause="learning_rate_too_high"),
    # healthy: nothing above info
    Case("ho6-images-0-1-cnn-digits", cfg("digits", 10, None, _cnn("relu", 2, kernel_size=3), ADAM,
                                          data_standardize=False), data="digits_0_1"),
    Case("ho6-label-noise-20-mnist1d", cfg("mnist1d", 8, None, _mlp("relu", 3), ADAM), data="mnist1d_label_noise_20"),
    Case("ho6-label-noise-30-moons", cfg("moons", 30, None, _mlp("relu", 3), ADAM), data="moons_label_noise_30"),
    Case("ho6-class-weights-imbalanced", cfg("imbalanced", 15, None, _mlp("relu", 2), ADAM,
                                             loss="weighted_cross_entropy")),
    Case("ho6-adamw-layernorm-decay-mnist1d", cfg("mnist1d", 8, 3000, _mlp("relu", 3, norm="layer"),
                                                  {"name": "adamw", "lr": 0.001}, reg={"weight_decay": 0.05})),
    _custom("ho6-grad-accumulation-loop", "grad_accumulation_loop", set()),
    _custom("ho6-label-smoothing-digits", "label_smoothing_digits", set()),
    _custom("ho6-onecycle-mnist1d", "onecycle_mnist1d", set()),
    _custom("ho6-transformer-warmup-mnist1d", "transformer_warmup_mnist1d", set()),
    _custom("ho6-preln-residual-mlp-spiral", "preln_residual_mlp_spiral", set()),
    _custom("ho6-adam-small-head-moons", "adam_zero_head_moons", set()),
    _custom("ho6-relu-batch-8-digits", "small_batch_relu_digits", set()),
]
for case in HELD_OUT_6:
    _standardize_off(case.config)
