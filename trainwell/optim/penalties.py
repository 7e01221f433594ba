"""Penalties as chain stages: L2 / weight decay, the L1 sub-gradient and L1's proximal step.

Where a penalty sits in the chain is what it means: placed first, ``u + c * p``
is the gradient of ``c/2 * ||p||^2`` and goes through the adaptive scaling
(torch's ``weight_decay`` in SGD and Adam); placed after the scaling it is
decoupled weight decay (AdamW).
"""

from __future__ import annotations

import torch

from trainwell.optim.base import NON_NEGATIVE, Transform

__all__ = ["AddL1Subgradient", "AddScaledParams", "L1Proximal", "add_decayed_weights", "add_l1", "add_l2",
           "l1_proximal"]


class AddScaledParams(Transform):
    """``u + c * p`` with ``c = group[key]``.

    Placed first it is the gradient of an L2 penalty ``c/2 * ||p||^2`` (torch's
    ``weight_decay`` in SGD and Adam: the penalty then goes through the
    adaptive scaling). Placed after the scaling it is decoupled weight decay
    (AdamW): every weight shrinks by ``lr * c`` whatever its gradient history.
    A sparse gradient passes while ``c = 0``; with ``c > 0`` it is refused, as
    torch.optim.SGD and Adagrad refuse it.
    """

    sparse = True

    def __init__(self, key: str) -> None:
        self.key = key

    @property
    def hyper(self):
        return {self.key: NON_NEGATIVE}

    def plain(self, updates, params, states, group):
        c = group[self.key]
        if c == 0:
            return updates
        if any(u.is_sparse for u in updates):
            raise RuntimeError(f"{self.key}={c} is not compatible with sparse gradients (as in torch.optim): "
                               f"set {self.key}=0")
        return [u.add(p, alpha=c) for u, p in zip(updates, params)]

    def foreach(self, updates, params, states, group):
        c = group[self.key]
        return updates if c == 0 else torch._foreach_add(updates, params, alpha=c)

    def is_identity(self, group):
        return group[self.key] == 0

    def __repr__(self) -> str:
        return f"AddScaledParams({self.key!r})"


def add_l2(key: str = "weight_decay") -> AddScaledParams:
    """Gradient of the L2 penalty ``key/2 * ||p||^2``; place it first in a chain."""
    return AddScaledParams(key)


def add_decayed_weights(key: str = "weight_decay") -> AddScaledParams:
    """Decoupled weight decay; place it after the adaptive scaling (AdamW)."""
    return AddScaledParams(key)


class AddL1Subgradient(Transform):
    """``u + c * sign(p)``: the sub-gradient of ``c * ||p||_1`` (weights hover around 0, rarely hit it)."""

    def __init__(self, key: str = "l1") -> None:
        self.key = key

    @property
    def hyper(self):
        return {self.key: NON_NEGATIVE}

    def plain(self, updates, params, states, group):
        c = group[self.key]
        return updates if c == 0 else [u.add(p.sign(), alpha=c) for u, p in zip(updates, params)]

    def foreach(self, updates, params, states, group):
        c = group[self.key]
        return updates if c == 0 else torch._foreach_add(updates, torch._foreach_sign(params), alpha=c)

    def __repr__(self) -> str:
        return f"AddL1Subgradient({self.key!r})"


def add_l1(key: str = "l1") -> AddL1Subgradient:
    """The L1 penalty's sub-gradient ``key * sign(p)``; place it first in a chain."""
    return AddL1Subgradient(key)


class L1Proximal(Transform):
    """The proximal step of ``c * ||p||_1``: after the update, ``p <- sign(p) * max(|p| - lr*c, 0)``.

    Unlike the sub-gradient it sets small weights to exactly zero: L1's feature
    selection (seed 002).
    """

    def __init__(self, key: str = "l1") -> None:
        self.key = key

    @property
    def hyper(self):
        return {self.key: NON_NEGATIVE}

    def plain(self, updates, params, states, group):
        return updates

    foreach = plain

    def is_identity(self, group):
        return True

    def after_apply(self, params, states, group):
        threshold = float(group["lr"]) * group[self.key]
        if threshold == 0:
            return
        for p in params:
            p.copy_(p.sign() * (p.abs() - threshold).clamp_(min=0))

    def __repr__(self) -> str:
        return f"L1Proximal({self.key!r})"


def l1_proximal(key: str = "l1") -> L1Proximal:
    """L1's proximal step after the update (exact zeros); place it last in a chain."""
    return L1Proximal(key)
