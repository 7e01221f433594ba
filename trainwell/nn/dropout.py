"""Dropout, the two ways of seed 002.

Each unit is kept with probability ``q = 1 - p`` in training. The expected
activation must be the same in training and at evaluation, which can be had
two ways:

* ``inverted`` (torch's ``nn.Dropout``): scale the kept units by ``1/q`` in
  training, do nothing at evaluation;
* ``classic`` (Srivastava et al. 2014): leave the kept units as they are in
  training, multiply every unit by ``q`` at evaluation.

Both give the same network function in expectation; inverted is cheaper at
inference and is what frameworks use. Input dropout is the same layer placed
on the inputs (usually with a smaller ``p``).
"""

from __future__ import annotations

import torch
from torch import nn

from trainwell.registry import Registry

__all__ = ["DROPOUTS", "ClassicDropout", "make_dropout"]

DROPOUTS: Registry = Registry("dropout mode")


class ClassicDropout(nn.Module):
    """Dropout that scales by the keep probability at evaluation instead of in training.

    ``train``: ``y = x * m`` with ``m ~ Bernoulli(1 - p)``; ``eval``: ``y = (1 - p) x``.

    Args:
        p: drop probability in [0, 1).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must lie in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * (1.0 - self.p)
        if self.p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


DROPOUTS.add("inverted", nn.Dropout, "keep units with probability q, scale them by 1/q in training (torch's)")
DROPOUTS.add("classic", ClassicDropout, "keep units with probability q in training, scale every unit by q at eval")


def make_dropout(mode: str, p: float) -> nn.Module:
    """A dropout layer of ``mode`` (``inverted`` or ``classic``) with drop probability ``p``."""
    return DROPOUTS.build(mode, p)
