"""Normalisation layers by name (seeds 000, 001, 004).

A norm factory takes ``(num_features, dims)`` where ``dims`` is 0 for fully
connected features ``(batch, features)``, 1 for 1-D convolutions
``(batch, channels, length)`` and 2 for images ``(batch, channels, h, w)``.
Batch norm normalises per feature (FC) or per channel (conv) over the batch;
layer norm normalises each sample over its features, with gamma and beta per
feature.
"""

from __future__ import annotations

import torch
from torch import nn

from trainwell.registry import Registry

__all__ = ["NORMS", "ChannelLayerNorm", "make_norm"]

NORMS: Registry = Registry("norm")


class ChannelLayerNorm(nn.Module):
    """Layer norm over (channels, *spatial) of each sample, gamma/beta per channel.

    ``nn.LayerNorm`` needs the spatial size up front; a conv layer's output
    length depends on the input, so this normalises over every non-batch axis
    and keeps one gamma and beta per channel.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, channels, *spatial)
        dims = tuple(range(1, x.dim()))
        var, mean = torch.var_mean(x, dim=dims, unbiased=False, keepdim=True)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"


@NORMS.register("none", "no normalisation")
def _none(num_features: int, dims: int) -> nn.Module:
    return nn.Identity()


@NORMS.register("batch", "batch norm: per feature (FC) or per channel (conv) over the batch, running estimates for eval")
def _batch(num_features: int, dims: int) -> nn.Module:
    return (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d)[dims](num_features)


@NORMS.register("layer", "layer norm: statistics per sample over its features, gamma/beta per feature")
def _layer(num_features: int, dims: int) -> nn.Module:
    return nn.LayerNorm(num_features) if dims == 0 else ChannelLayerNorm(num_features)


def make_norm(name: str, num_features: int, dims: int = 0) -> nn.Module:
    """Build the norm registered under ``name`` for ``num_features`` features or channels."""
    return NORMS.get(name)(num_features, dims)
