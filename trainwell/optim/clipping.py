"""Clipping and guards as chain stages: bound the update, or skip a step that is not finite."""

from __future__ import annotations

import torch
from torch import Tensor

from trainwell.optim.base import SkipStep, Transform

__all__ = ["ClipByGlobalNorm", "ClipByValue", "NonFiniteUpdateError", "SkipNonFinite", "clip_by_global_norm",
           "clip_by_value", "skip_non_finite"]


class NonFiniteUpdateError(FloatingPointError):
    """An update held NaN or Inf and the chain was told to stop on it."""


class ClipByValue(Transform):
    """Clamp every coordinate of the update to ``[-c, c]``, ``c = group[key]`` (None: off)."""

    def __init__(self, key: str = "clip_value") -> None:
        self.key = key

    def plain(self, updates, params, states, group):
        c = group.get(self.key)
        return updates if c is None else [u.clamp(-c, c) for u in updates]

    def foreach(self, updates, params, states, group):
        c = group.get(self.key)
        if c is None:
            return updates
        out = torch._foreach_clamp_min(updates, -c)
        torch._foreach_clamp_max_(out, c)
        return out

    def __repr__(self) -> str:
        return f"ClipByValue({self.key!r})"


def clip_by_value(key: str = "clip_value") -> ClipByValue:
    """Clamp each coordinate of the update to ``[-group[key], group[key]]``."""
    return ClipByValue(key)


class ClipByGlobalNorm(Transform):
    """Rescale the group's updates so that their joint L2 norm is at most ``group[key]`` (None: off)."""

    def __init__(self, key: str = "max_norm") -> None:
        self.key = key

    def _factor(self, norms: list[Tensor], max_norm: float) -> Tensor:
        total = torch.linalg.vector_norm(torch.stack(norms))
        return (max_norm / (total + 1e-6)).clamp(max=1.0)

    def plain(self, updates, params, states, group):
        c = group.get(self.key)
        if c is None:
            return updates
        factor = self._factor([torch.linalg.vector_norm(u) for u in updates], c)
        return [u * factor for u in updates]

    def foreach(self, updates, params, states, group):
        c = group.get(self.key)
        if c is None:
            return updates
        return torch._foreach_mul(updates, self._factor(list(torch._foreach_norm(updates)), c))

    def __repr__(self) -> str:
        return f"ClipByGlobalNorm({self.key!r})"


def clip_by_global_norm(key: str = "max_norm") -> ClipByGlobalNorm:
    """Scale the group's update down to a joint L2 norm of at most ``group[key]``."""
    return ClipByGlobalNorm(key)


class SkipNonFinite(Transform):
    """Skip (or stop) the step when an update holds NaN or Inf.

    Put it first in a chain: then no buffer of a later transform has seen the
    bad gradient. ``mode="skip"`` leaves parameters and state as they were and
    counts the skip in ``optimizer.skipped_steps``; ``mode="stop"`` raises
    :class:`NonFiniteUpdateError`.
    """

    def __init__(self, mode: str = "skip") -> None:
        if mode not in ("skip", "stop"):
            raise ValueError(f"mode must be 'skip' or 'stop', got {mode!r}")
        self.mode = mode

    def plain(self, updates, params, states, group):
        for i, u in enumerate(updates):
            if not bool(torch.isfinite(u).all()):
                if self.mode == "stop":
                    raise NonFiniteUpdateError(f"non-finite update for parameter {i} of its group "
                                               f"(shape {tuple(u.shape)})")
                raise SkipStep
        return updates

    def foreach(self, updates, params, states, group):
        norms = torch._foreach_norm(updates)
        if bool(torch.isfinite(torch.stack(norms)).all()):
            return updates
        return self.plain(updates, params, states, group)

    def __repr__(self) -> str:
        return f"SkipNonFinite({self.mode!r})"


def skip_non_finite(mode: str = "skip") -> SkipNonFinite:
    """Skip (``"skip"``) or refuse (``"stop"``) a step whose update holds NaN or Inf; place it first."""
    return SkipNonFinite(mode)
