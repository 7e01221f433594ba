"""A search space: config keys mapped to distributions, validated like the config.

A space is a YAML mapping of config keys to one distribution each::

    optim.lr: {log_uniform: [1e-4, 1]}      # float, uniform in log(lr)
    reg.dropout: {uniform: [0.0, 0.5]}      # float, uniform
    model.depth: {int: [1, 6]}              # integer, both ends included
    model.activation: {choice: [relu, tanh]}

:func:`load_space` checks every key against the config by applying sample
values (both ends of a range, every choice) with
:func:`trainwell.config.apply_overrides`, so that an unknown key or a value
the config refuses is one line naming it before any trial runs.
:meth:`Space.suggest` asks an Optuna trial for one value of each key and
returns them as ``key=value`` overrides.
"""

from __future__ import annotations

import math
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainwell.config import Config, apply_overrides
from trainwell.errors import TrainwellError

__all__ = ["DISTRIBUTIONS", "Dimension", "Space", "SpaceError", "load_space", "override"]

DISTRIBUTIONS = ("log_uniform", "uniform", "int", "choice")


class SpaceError(TrainwellError):
    """A search space that cannot be used: unreadable, an unknown key or distribution, a bad range."""


@dataclass(frozen=True)
class Dimension:
    """One key of a space: ``kind`` is one of :data:`DISTRIBUTIONS`; ``values`` the range ``(lo, hi)`` or the choices."""

    key: str
    kind: str
    values: tuple[Any, ...]

    def samples(self) -> tuple[Any, ...]:
        """The values a check applies: both ends of a range, every choice."""
        return self.values

    def suggest(self, trial: Any) -> Any:
        """One value from an Optuna trial (``suggest_float`` / ``suggest_int`` / ``suggest_categorical``)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        lo, hi = self.values
        if self.kind == "int":
            return trial.suggest_int(self.key, lo, hi)
        return trial.suggest_float(self.key, lo, hi, log=self.kind == "log_uniform")

    def grid(self) -> list[Any]:
        """Every value, for the grid sampler (choices and integer ranges only)."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(self.values[0], self.values[1] + 1))
        raise SpaceError(f"the grid sampler needs choice or int ranges; {self.key} is {self.kind} "
                         "(use --sampler tpe or random, or list the values as a choice)")


@dataclass(frozen=True)
class Space:
    """A validated search space (see the module's docstring)."""

    dimensions: tuple[Dimension, ...]

    def suggest(self, trial: Any) -> list[str]:
        """The ``key=value`` overrides of one trial."""
        return [override(d.key, d.suggest(trial)) for d in self.dimensions]

    def grid(self) -> dict[str, list[Any]]:
        """The search space as Optuna's ``GridSampler`` takes it."""
        return {d.key: d.grid() for d in self.dimensions}

    def to_dict(self) -> dict[str, Any]:
        return {d.key: {d.kind: list(d.values)} for d in self.dimensions}


def _yaml_scalar(value: Any) -> str:
    """``value`` as the YAML that :func:`~trainwell.config.parse_overrides` reads back as the same value.

    PyYAML reads YAML 1.1, where ``1e-05`` is a string: a float keeps a dot and a signed exponent.
    """
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{'' if exponent[0] in '+-' else '+'}{exponent}"
        return text
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a double-quoted YAML string: never read as a number or a bool


def override(key: str, value: Any) -> str:
    """The ``--set`` string that gives ``key`` the value ``value`` exactly."""
    return f"{key}={_yaml_scalar(value)}"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _as_number(x: Any) -> Any:
    """``x``, or the float a string spells: PyYAML (YAML 1.1) reads ``1e-4`` as a string."""
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return x
    return x


def _dimension(key: Any, spec: Any) -> Dimension:
    if not isinstance(key, str) or not key:
        raise SpaceError(f"a space key must be a config key such as optim.lr, got {key!r}")
    example = "e.g. {log_uniform: [1e-4, 1]}, {uniform: [0, 0.5]}, {int: [1, 6]} or {choice: [relu, tanh]}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise SpaceError(f"space key {key}: give one distribution, {example}; got {spec!r}")
    (kind, values), = spec.items()
    if kind not in DISTRIBUTIONS:
        raise SpaceError(f"space key {key}: unknown distribution {kind!r}; use one of {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise SpaceError(f"space key {key}: choice takes a non-empty list, got {values!r}")
        bad = [v for v in values if not (v is None or isinstance(v, (bool, int, float, str)))]
        if bad:
            raise SpaceError(f"space key {key}: a choice is a number, a string, a bool or null, got {bad[0]!r}")
        if len(set(map(repr, values))) < len(values):
            raise SpaceError(f"space key {key}: choice lists a value twice: {values!r}")
        return Dimension(key, kind, tuple(values))
    if isinstance(values, list):
        values = [_as_number(v) for v in values]
    if not (isinstance(values, list) and len(values) == 2 and all(map(_number, values))):
        raise SpaceError(f"space key {key}: {kind} takes [low, high] (two finite numbers), got {values!r}")
    lo, hi = values
    if kind == "int":
        if not all(isinstance(v, int) or float(v).is_integer() for v in values):
            raise SpaceError(f"space key {key}: int takes two whole numbers, got {values!r}")
        lo, hi = int(lo), int(hi)
    if not lo < hi:
        raise SpaceError(f"space key {key}: {kind} needs low < high, got [{lo}, {hi}]")
    if kind == "log_uniform" and lo <= 0:
        raise SpaceError(f"space key {key}: log_uniform needs low > 0, got [{lo}, {hi}]")
    return Dimension(key, kind, (lo, hi) if kind == "int" else (float(lo), float(hi)))


def load_space(space: str | Path | dict[str, Any], config: Config) -> Space:
    """Read and validate a search space against ``config``.

    Args:
        space: a YAML file, or the mapping it holds.
        config: the base config every trial starts from.

    Returns:
        The :class:`Space`, its keys in the file's order.

    Raises:
        SpaceError: one line naming the problem: the file, an unknown distribution,
            a bad range, or a key or value the config refuses (with the config's words).
    """
    if isinstance(space, (str, Path)):
        path = Path(space)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpaceError(f"space file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise SpaceError(f"cannot read space file {path}: {err}") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise SpaceError(f"invalid YAML in space file {path}{where}") from None
    else:
        raw = space
    if not isinstance(raw, dict) or not raw:
        raise SpaceError("a space maps config keys to distributions, e.g. optim.lr: {log_uniform: [1e-4, 1]}; "
                         f"got {type(raw).__name__ if raw else 'nothing'}")
    dims = tuple(_dimension(k, v) for k, v in raw.items())
    for d in dims:
        for value in d.samples():
            try:
                apply_overrides(config, [override(d.key, value)])
            except TrainwellError as err:
                raise SpaceError(f"space key {d.key} = {value!r}: {err}") from None
    return Space(dims)
