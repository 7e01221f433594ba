"""What every gradient transform is built on: the :class:`Transform` protocol and its helpers.

An update rule is a chain ``g -> t1 -> t2 -> ... -> u`` followed by the step
``p <- p - lr * u`` (after optax and fastai's steppers; see
:class:`~trainwell.optim.chain.Chain`). Each transform reads its
hyper-parameters from the parameter group (so schedulers and per-layer
settings work as in torch.optim) and keeps its per-parameter buffers in the
optimizer's ``state[p]`` under torch.optim's names, so that a state_dict
moves between trainwell and torch.optim both ways.

Every transform has a plain kernel (``plain``: a Python loop of per-tensor
ops, the reference) and may have a ``foreach`` kernel (``torch._foreach_*``
over the whole group, the fast path, tested against the plain one).
Transforms never modify their input in place: it may be ``p.grad`` or another
transform's buffer. A fast kernel may return a lazy :class:`Ratio` so that the
final division is fused into the parameter update.

Complex parameters reach a transform as real views (``torch.view_as_real``:
the real and imaginary parts as two real coordinates, so that ``u * u`` is
``|g|^2`` per part), as torch.optim treats them; their buffers are kept
complex in the state, like torch's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["BETAS", "BOOL", "NON_NEGATIVE", "POSITIVE", "UNIT", "Ratio", "SkipStep", "Transform", "buffers",
           "step_counts"]

Tensors = list[Tensor]
States = list[dict[str, Any]]
Group = dict[str, Any]
Check = Callable[[Any], bool]


class SkipStep(Exception):
    """Raised by a transform to leave the whole group's parameters and state as they were."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _non_negative(v: Any) -> bool:
    return _is_number(v) and v >= 0


def _positive(v: Any) -> bool:
    return _is_number(v) and v > 0


def _unit(v: Any) -> bool:
    return _is_number(v) and 0 <= v < 1


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _betas(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and len(v) == 2 and all(_unit(b) for b in v)


# (check, the allowed values in words): module-level functions, so that transforms pickle
NON_NEGATIVE: tuple[Check, str] = (_non_negative, "a finite value >= 0")
POSITIVE: tuple[Check, str] = (_positive, "a finite value > 0")
UNIT: tuple[Check, str] = (_unit, "0 <= value < 1")
BOOL: tuple[Check, str] = (_bool, "True or False")
BETAS: tuple[Check, str] = (_betas, "two values, each 0 <= beta < 1")


def buffers(states: States, params: Tensors, key: str, fill: float = 0.0) -> Tensors:
    """The buffers ``state[key]`` of every parameter, created (as ``fill``) on first use.

    (For a complex parameter, ``params`` holds its real view and the chain
    turns the buffer back into a complex tensor after the step.)
    """
    out = []
    for state, p in zip(states, params):
        buf = state.get(key)
        if buf is None:
            buf = state[key] = torch.full_like(p, fill, memory_format=torch.preserve_format)
        out.append(buf)
    return out


def step_counts(states: States) -> list[float]:
    """Each parameter's step count ``t`` (the chain has already counted the current step)."""
    return [float(s["step"]) for s in states]


class Ratio:
    """A lazy update ``num / den`` from a fast kernel (``den`` is a fresh temporary it owns).

    The chain's last step applies it as ``p.addcdiv_(num, den, value=-lr)``,
    one pass, as torch.optim's kernels do; any transform that needs the
    update as tensors gets it through :meth:`materialize`, which divides in
    place into ``den`` (allocating a large tensor costs more than a pass over
    it on CPUs whose fresh pages fault: ~10 ms per 13 MB on this VM).
    """

    __slots__ = ("num", "den")

    def __init__(self, num: Tensors, den: Tensors) -> None:
        self.num, self.den = num, den

    def materialize(self) -> Tensors:
        """The update ``num / den`` as tensors (computed in place into ``den``)."""
        torch._foreach_reciprocal_(self.den)
        torch._foreach_mul_(self.den, self.num)
        return self.den


class Transform:
    """One stage of an update rule.

    Attributes:
        hyper: hyper-parameter name -> (check, description of the allowed range).
            Keep checks module-level functions (see :data:`NON_NEGATIVE`) so
            that the optimizer pickles.
        needs_step: whether the chain must count steps per parameter (``state["step"]``).
        sparse: whether the plain kernel accepts sparse gradients.
    """

    hyper: dict[str, tuple[Check, str]] = {}
    needs_step = False
    sparse = False

    def validate(self, group: Group) -> None:
        """Raise ValueError when a setting of ``group`` is outside what this transform allows."""
        for key, (ok, allowed) in self.hyper.items():
            if key in group and not ok(group[key]):
                raise ValueError(f"invalid {key}={group[key]!r} for {type(self).__name__}: allowed {allowed}")

    def plain(self, updates: Tensors, params: Tensors, states: States, group: Group) -> Tensors:
        """The reference kernel: one tensor at a time."""
        raise NotImplementedError

    def foreach(self, updates: Tensors, params: Tensors, states: States, group: Group) -> Tensors:
        """The fast kernel over the whole group (defaults to the plain one)."""
        return self.plain(updates, params, states, group)

    def after_apply(self, params: Tensors, states: States, group: Group) -> None:
        """Runs after ``p <- p - lr * u`` (proximal steps live here)."""

    def scale(self, states: States, group: Group) -> Tensors | None:
        """For adaptive transforms: the per-element factor the gradient is scaled by."""
        return None

    def is_identity(self, group: Group) -> bool:
        """True when, with this group's settings, the update passes through unchanged."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
