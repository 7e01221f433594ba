"""Loading a config: YAML files, ``--set key=value`` overrides, and one readable line for every mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from trainwell.config.sections import Config, ConfigError
from trainwell.errors import closest

__all__ = ["apply_overrides", "load_config", "parse_overrides", "resolve_config"]


def _section_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the key at ``loc`` (for suggestions)."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _leaf_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, str]]:
    """(last name, dotted path) of every leaf key, for "wrong section" hints."""
    out: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _leaf_keys(ann, f"{prefix}{name}.")
        else:
            out.append((name, f"{prefix}{name}"))
    return out


def _printable(text: str) -> str:
    """``text`` with control characters escaped, so that a message stays one line."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _format(err: ValidationError) -> str:
    """One line for the first problem of a validation error."""
    first = err.errors()[0]
    loc = tuple(_printable(str(p)) for p in first["loc"])
    key = ".".join(loc) or "config"
    if first["type"] == "extra_forbidden":
        section = _section_at(loc)
        valid = list(section.model_fields) if section else []
        near = [".".join([*map(str, loc[:-1]), n]) for n in closest(str(loc[-1]), valid)]
        similar = set(closest(str(loc[-1]), [leaf for leaf, _ in _leaf_keys()]))
        near += [path for leaf, path in _leaf_keys() if leaf in similar and path not in near][:3]
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        return f"unknown config key '{key}'{hint} (valid keys here: {', '.join(valid)})"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "value_error" and isinstance(first.get("input"), dict):  # a check of a whole section
        return f"invalid {key} section: {msg}"
    if first["type"] in ("model_type", "dict_type"):
        return f"config key '{key}' must be a mapping of keys, got {first.get('input')!r}"
    extra = f" (got {first['input']!r})" if "input" in first and not isinstance(first["input"], dict) else ""
    if "unknown" in msg or "got" in msg:
        extra = ""
    more = len(err.errors()) - 1
    tail = f" [and {more} more problem{'s' * (more > 1)}]" if more else ""
    return f"invalid config key '{key}': {msg}{extra}{tail}"


def _validate(raw: Any) -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a YAML file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid syntax"
        raise ConfigError(f"invalid YAML in {path}{where}: {problem}") from None


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Turn ``["model.width=256", "optim.name=sgd"]`` into a nested dict.

    Values are parsed as YAML scalars, so ``256`` is an int, ``true`` a bool and
    ``[0.9, 0.99]`` a list.

    Raises:
        ConfigError: an override has no ``=``, an empty key, or an unparsable value.
    """
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = _printable(key.strip())
        if not sep:
            raise ConfigError(f"--set needs key=value, got {item!r} (e.g. --set model.width=256)")
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(f"--set has an empty key in {item!r} (e.g. --set model.width=256)")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot parse value {value!r}") from None
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: '{part}' was already set to a value, not a section")
            node = child
        node[parts[-1]] = parsed
    return tree


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and value and isinstance(out.get(key), dict):  # {} clears a mapping
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or the defaults), apply ``key=value`` overrides, validate.

    Args:
        path: a YAML file, or None for the defaults.
        overrides: ``--set`` strings such as ``"model.width=256"``.

    Raises:
        ConfigError: one readable line naming the problem.
    """
    raw = _read_yaml(Path(path)) if path is not None else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of keys, got {type(raw).__name__}")
    return _validate(_merge(raw, parse_overrides(overrides)))


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """A copy of ``config`` with ``key=value`` overrides applied and validated."""
    return _validate(_merge(config.model_dump(mode="json"), parse_overrides(overrides)))


def resolve_config(config: Config | dict[str, Any] | str | Path | None) -> Config:
    """Accept any form a user may pass: a Config, a dict, a YAML path or None."""
    if isinstance(config, Config):
        return config
    if isinstance(config, (str, Path)):
        return load_config(config)
    return _validate(config)
