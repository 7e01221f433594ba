"""Named choices: every technique of the notes is reachable by a string.

A :class:`Registry` maps a name (``"relu"``, ``"he_uniform"``, ``"adam"``) to a
factory and a one-line description. Config validation, the model builder and
``trainwell components`` all read the same registries, so adding a choice is
one ``@REGISTRY.register(...)`` line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from trainwell.errors import TrainwellError, closest

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One named choice: its factory, a one-line description and free metadata."""

    name: str
    factory: T
    description: str
    meta: dict[str, Any]


class Registry(Generic[T]):
    """A named set of factories of one kind (activations, norms, optimizers, ...).

    Args:
        kind: what the names denote, used in error messages (``"activation"``).

    Example:
        >>> ACTS = Registry("activation")
        >>> @ACTS.register("relu", "max(0, x)")
        ... def relu(): ...
        >>> ACTS.names()
        ['relu']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, description: str, **meta: Any) -> Callable[[T], T]:
        """Decorator that registers ``factory`` under ``name``."""

        def decorator(factory: T) -> T:
            self.add(name, factory, description, **meta)
            return factory

        return decorator

    def add(self, name: str, factory: T, description: str, **meta: Any) -> None:
        """Register ``factory`` under ``name`` (a name can be registered once)."""
        if name in self._entries:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, factory, description, meta)

    def entry(self, name: str) -> Entry[T]:
        """Return the entry for ``name``.

        Raises:
            TrainwellError: ``name`` is unknown; the message lists the valid names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise TrainwellError(self.unknown_message(name)) from None

    def get(self, name: str) -> T:
        """Return the factory registered under ``name`` (see :meth:`entry`)."""
        return self.entry(name).factory

    def options(self, name: str) -> dict[str, Any]:
        """The keyword options the factory of ``name`` takes, with their defaults.

        ``inplace`` (of torch's activations) is not offered: an in-place
        activation overwrites the tensor that hooks and the doctor read.
        """
        factory = self.get(name)
        if not callable(factory):
            return {}
        params = inspect.signature(factory).parameters.values()
        return {p.name: p.default for p in params
                if p.default is not inspect.Parameter.empty and p.name != "inplace"}

    def check_options(self, name: str, options: dict[str, Any]) -> None:
        """Raise a :class:`TrainwellError` naming the options of ``name`` if ``options`` has others."""
        accepted = self.options(name)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            takes = ", ".join(f"{k} (default {v})" for k, v in accepted.items()) or "no options"
            raise TrainwellError(f"{self.kind} {name!r} has no option {', '.join(unknown)}; it takes {takes}")

    def build(self, name: str, *args: Any, **options: Any) -> Any:
        """Call the factory of ``name`` with ``args`` and its keyword ``options``.

        Raises:
            TrainwellError: unknown name, an option the factory does not take,
                or a value it refuses; the message says what is accepted.
        """
        self.check_options(name, options)
        try:
            return self.get(name)(*args, **options)  # type: ignore[operator]
        except (TypeError, ValueError) as err:
            raise TrainwellError(f"{self.kind} {name!r}: {err}") from None

    def unknown_message(self, name: object) -> str:
        near = closest(str(name), self._entries)
        hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
        return f"unknown {self.kind} {name!r}{hint}; valid: {', '.join(self.names())}"

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
