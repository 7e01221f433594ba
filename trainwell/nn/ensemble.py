"""An ensemble of trained models combined into one module (seed 000: an ensemble beats its members)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """Members combined: ``average`` returns the log of the mean probabilities; ``vote`` (or
    ``weighted_vote`` with one weight per member) the log of the vote shares (ties go to the lower class),
    so ``argmax`` is the ensemble's prediction either way."""

    def __init__(self, members: Sequence[nn.Module], combine: str = "average",
                 weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.register_buffer("weights", torch.ones(len(members)) if weights is None
                             else torch.as_tensor(list(weights), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = [m(x) for m in self.members]
        if self.combine == "average":
            return torch.stack([torch.softmax(z, dim=1) for z in logits]).mean(0).clamp_min(1e-12).log()
        votes = torch.stack([nn.functional.one_hot(z.argmax(1), z.shape[1]) for z in logits]).float()
        share = (votes * self.weights.view(-1, 1, 1)).sum(0) / self.weights.sum()
        return share.clamp_min(1e-12).log()
