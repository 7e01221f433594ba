"""The playground's knobs and presets: every knob is a config key, with the choices trainwell's registries hold.

The playground's own defaults (:data:`BASE`) make a small, quick run on a
2-D set: they are config overrides like any other, so that "Export" gives
the ``config.yaml`` that ``trainwell train`` reruns. :data:`LIMITS` caps what
one page may ask the server to train.
"""

from __future__ import annotations

import typing
from typing import Any

from trainwell.components import REGISTRIES
from trainwell.config import Config, ConfigError, load_config
from trainwell.config.sections import ModelConfig, ScheduleConfig

__all__ = ["BASE", "DATASETS", "KNOBS", "LIMITS", "MAX_CLASSES", "PRESETS", "config_of", "knob_schema"]

DATASETS = ("moons", "circles", "spiral", "xor", "blobs")
BASE: dict[str, Any] = {
    "name": "playground", "data.name": "moons", "data.n_samples": 500, "data.batch_size": 10,
    "model.name": "mlp", "model.depth": 2, "model.width": 8, "model.dropout": 0.0,
    "optim.name": "adam", "optim.lr": 0.01, "train.epochs": 500, "train.progress": False, "train.threads": 1,
    "checkpoint.every_epochs": None, "checkpoint.best": False,
    "early_stopping.enabled": False,  # a page plays until paused: it does not stop itself
}
# what one page may ask for: the server's CPU is shared with the page it serves
LIMITS = {"data.n_samples": (20, 5000), "model.depth": (0, 12), "model.width": (1, 64), "train.epochs": (1, 10000)}
MAX_CLASSES = 10  # an uploaded file's labels: 0 to 9


def _names(kind: str) -> list[str]:
    return [e.name for e in REGISTRIES[kind]]


def _literal(annotation: Any) -> list[str]:
    return list(typing.get_args(annotation))


def knob_schema() -> list[dict[str, Any]]:
    """The knobs the page draws, in order: key, kind (choice, int, number, bool), choices or range."""
    choice = lambda key, values, group, **kw: {"key": key, "kind": "choice", "choices": values, "group": group, **kw}
    number = lambda key, group, lo, hi, **kw: {"key": key, "kind": "number", "min": lo, "max": hi, "group": group,
                                               **kw}
    integer = lambda key, group, lo, hi, **kw: {"key": key, "kind": "int", "min": lo, "max": hi, "group": group,
                                                **kw}
    return [
        choice("data.name", list(DATASETS), "data"),
        number("data.noise", "data", 0, 2, step=0.05, optional=True),
        integer("data.n_samples", "data", *LIMITS["data.n_samples"]),
        number("data.test_fraction", "data", 0.05, 0.9, step=0.05),
        integer("data.batch_size", "data", 1, 5000),
        integer("model.depth", "model", *LIMITS["model.depth"]),
        integer("model.width", "model", *LIMITS["model.width"]),
        choice("model.activation", _names("activation"), "model"),
        number("model.activation_options.slope", "model", 0, 1, step=0.01, when={"model.activation": "leaky_relu"}),
        integer("model.activation_options.k", "model", 2, 8, when={"model.activation": "maxout"}),
        choice("model.init", [n for n in _names("init") if n != "pretrained"], "model"),
        choice("model.norm", _names("norm"), "model"),
        choice("model.norm_position", _literal(ModelConfig.model_fields["norm_position"].annotation), "model"),
        number("model.dropout", "model", 0, 0.9, step=0.05),
        choice("optim.name", _names("optimizer"), "training"),
        number("optim.lr", "training", 1e-5, 100, log=True),
        choice("schedule.name", _literal(ScheduleConfig.model_fields["name"].annotation), "training"),
        number("reg.l1", "training", 0, 1, step=1e-4),
        number("reg.l2", "training", 0, 1, step=1e-4),
        number("reg.weight_decay", "training", 0, 1, step=1e-4),
        number("clip.max_norm", "training", 0.01, 100, log=True, optional=True),
        integer("train.epochs", "training", *LIMITS["train.epochs"]),
        integer("seed", "training", 0, 10**6),
    ]


KNOBS = {k["key"]: k for k in knob_schema()}


def config_of(overrides: dict[str, Any], extra: dict[str, Any] | None = None) -> Config:
    """The run's config: the playground's base, then the page's knobs (each a config key), validated.

    ``extra`` holds keys the server sets itself, never the page (``data.path`` of an upload: a page must
    not name a file of the server's to read).

    Raises:
        ConfigError: a key that is no knob, a value out of the knob's range, or one the config refuses.
    """
    unknown = sorted(set(overrides) - set(KNOBS))
    if unknown:
        raise ConfigError(f"not a playground knob: {unknown[0]} (the knobs: {', '.join(KNOBS)})")
    merged = {**BASE, **overrides, **(extra or {})}
    if merged.get("data.path") is not None:  # a file is used whole: the generated sets' knobs do not apply
        for key in ("data.name", "data.n_samples", "data.noise"):
            merged.pop(key, None)
    cfg = load_config(None, [f"{k}={_yaml(v)}" for k, v in merged.items()])
    # the ranges are checked on the validated config: a value sent as a string is judged as what it became
    resolved = cfg.model_dump(mode="json")
    for key, knob in KNOBS.items():
        if key not in merged or (key == "data.name" and "data.path" in merged):
            continue
        value = _at(resolved, key)
        if knob["kind"] == "choice" and value not in knob["choices"]:
            raise ConfigError(f"{key}={value}: the playground offers {', '.join(map(str, knob['choices']))}")
        if knob["kind"] in ("int", "number") and value is not None and not knob["min"] <= value <= knob["max"]:
            raise ConfigError(f"{key}={value}: the playground allows {knob['min']} to {knob['max']}")
    return cfg


def _at(tree: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


PRESETS: list[dict[str, Any]] = [
    {"name": "vanishing: sigmoid, 8 layers, SGD",
     "claim": "the gradient shrinks layer by layer through sigmoids (derivative at most 0.25): the first layers "
              "barely learn", "lab": "activation_derivatives",
     "knobs": {"model.depth": 8, "model.width": 8, "model.activation": "sigmoid", "optim.name": "sgd",
               "optim.lr": 0.1, "model.init": "default"}},
    {"name": "NaN: learning rate 10 (leaky ReLU)",
     "claim": "too large a step throws the weights far away until the loss is not a number", "lab": "nan_causes",
     "knobs": {"optim.name": "sgd", "optim.lr": 10.0, "model.depth": 3, "model.width": 16,
               "model.activation": "leaky_relu"}},
    {"name": "dead units: learning rate 10 (ReLU)",
     "claim": "with ReLU the same step throws the pre-activations below 0 for every input: the units die (their "
              "gradient is 0) and the loss stalls instead of blowing up", "lab": "dead_relu",
     "knobs": {"optim.name": "sgd", "optim.lr": 10.0, "model.depth": 3, "model.width": 16}},
    {"name": "deep ReLU, Xavier start",
     "claim": "Xavier's start halves the signal's variance at every ReLU layer, and the doctor flags the start; "
              "at this depth on this small set the net still learns in 30 epochs (compare He; the lab shows the "
              "collapse at depth 30)", "lab": "init_deep_relu",
     "knobs": {"model.depth": 10, "model.width": 16, "model.init": "xavier_normal", "optim.name": "sgd",
               "optim.lr": 0.05}},
    {"name": "deep ReLU, He start",
     "claim": "He's start keeps the variance through ReLU layers: no finding about the start", "lab": "init_deep_relu",
     "knobs": {"model.depth": 10, "model.width": 16, "model.init": "he_normal", "optim.name": "sgd",
               "optim.lr": 0.05}},
    {"name": "batch norm on",
     "claim": "normalising each layer's pre-activations lets a deep sigmoid net learn at a high rate",
     "lab": "saturation",
     "knobs": {"model.depth": 6, "model.width": 16, "model.activation": "sigmoid", "model.norm": "batch",
               "optim.name": "sgd", "optim.lr": 0.5}},
    {"name": "batch norm off",
     "claim": "the same deep sigmoid net without batch norm saturates and crawls", "lab": "saturation",
     "knobs": {"model.depth": 6, "model.width": 16, "model.activation": "sigmoid", "model.norm": "none",
               "optim.name": "sgd", "optim.lr": 0.5}},
]
