"""Attention over encoder states (seed 001's sequence models).

An attention module scores every encoder state ``k_s`` ``(batch, source, key)``
against a decoder query ``q`` ``(batch, query)``, turns the scores into
weights with a softmax over the source positions, and returns the weighted
mean of the states (the context) with the weights:

============ ==============================================================
``additive``  ``score = v^T tanh(W_q q + W_k k_s)`` (Bahdanau et al. 2015)
``dot``       ``score = q . k_s`` (Luong et al. 2015; needs query = key size)
``general``   ``score = q^T W k_s`` (Luong et al. 2015)
============ ==============================================================
"""

from __future__ import annotations

import torch
from torch import nn

from trainwell.registry import Registry

__all__ = ["ATTENTIONS", "AdditiveAttention", "Attention", "DotAttention", "GeneralAttention"]

ATTENTIONS: Registry = Registry("attention")


class Attention(nn.Module):
    """Base class: subclasses define :meth:`score`."""

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``query`` ``(batch, query)``, ``keys`` ``(batch, source, key)`` -> context ``(batch, key)`` and
        weights ``(batch, source)`` (each row sums to 1)."""
        weights = torch.softmax(self.score(query, keys), dim=1)  # (batch, source)
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # (batch, key)
        return context, weights


class AdditiveAttention(Attention):
    """Bahdanau's ``v^T tanh(W_q q + W_k k)``, with ``size`` hidden units."""

    def __init__(self, query_size: int, key_size: int, size: int | None = None) -> None:
        super().__init__()
        size = size or key_size
        self.query = nn.Linear(query_size, size, bias=False)
        self.key = nn.Linear(key_size, size)
        self.v = nn.Linear(size, 1, bias=False)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.query(query).unsqueeze(1) + self.key(keys))  # (batch, source, size)
        return self.v(hidden).squeeze(-1)  # (batch, source)


class DotAttention(Attention):
    """Luong's dot score ``q . k``."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        if query_size != key_size:
            raise ValueError(f"dot attention needs query and key of one size, got {query_size} and {key_size}; "
                             "use attention=general")

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # (batch, source)


class GeneralAttention(Attention):
    """Luong's general score ``q^T W k``."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.weight = nn.Linear(key_size, query_size, bias=False)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(self.weight(keys), query.unsqueeze(-1)).squeeze(-1)  # (batch, source)


ATTENTIONS.add("none", None, "no attention: the decoder sees only the encoder's last state")
ATTENTIONS.add("additive", AdditiveAttention, "Bahdanau: v^T tanh(W_q q + W_k k)")
ATTENTIONS.add("dot", DotAttention, "Luong dot: q . k")
ATTENTIONS.add("general", GeneralAttention, "Luong general: q^T W k")
