"""Training losses by name (seed 001, section K of the spec).

A loss factory takes the number of classes and returns ``f(logits, y)`` with
``logits`` of shape ``(batch, classes)`` and integer targets ``y`` of shape
``(batch,)``. Cross-entropy works from logits (log-softmax inside, so no
log(0)); ``mse`` compares softmax probabilities with one-hot targets, whose
gradient carries the activation's derivative - the comparison seed 001 makes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from trainwell.registry import Registry

__all__ = ["LOSSES", "make_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOSSES: Registry = Registry("loss")


@LOSSES.register("cross_entropy", "cross-entropy from logits (numerically stable log-softmax)")
def _cross_entropy(n_classes: int) -> LossFn:
    return F.cross_entropy


@LOSSES.register("mse", "mean squared error between softmax probabilities and one-hot targets")
def _mse(n_classes: int) -> LossFn:
    def mse(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(y, n_classes).to(logits.dtype)
        return F.mse_loss(logits.softmax(dim=1), target)

    return mse


def make_loss(name: str, n_classes: int) -> LossFn:
    """Return the loss function registered under ``name``."""
    return LOSSES.get(name)(n_classes)
