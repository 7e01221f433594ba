"""Normalisation by name (seeds 000, 001, 004).

Two kinds of norm:

* **inserted** after a linear/conv layer (``batch``, ``layer``, ``group``,
  ``whiten``, ``none``). The factory takes ``(num_features, dims)`` where
  ``dims`` is 0 for fully connected features ``(batch, features)``, 1 for 1-D
  convolutions ``(batch, channels, length)`` and 2 for images
  ``(batch, channels, h, w)``. Batch norm normalises per feature (FC) or per
  channel (conv) over the batch; layer norm each sample over its features
  (gamma and beta per feature); group norm each sample over groups of
  channels; whitening decorrelates the features over the batch (ZCA), the
  ideal the others approximate with a diagonal.
* **wrapping** the layer's weights (``weight``, ``cosine``): the factory
  takes the layer and returns the layer to use. Weight norm
  ``h = g * w.x / ||w||``; cosine norm ``h = w.x / (||w|| ||x||)``, which lies
  in [-1, 1] whatever the scale of ``w`` or ``x``.

Options go as keyword arguments (``model.norm_options: {groups: 8}``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainwell.registry import Registry

__all__ = ["NORMS", "WHITENINGS", "BatchNorm1d", "BatchNorm2d", "ChannelLayerNorm", "CosineNorm", "Whiten",
           "make_norm", "whitening_matrix", "wrap_layer", "wraps_layer"]

NORMS: Registry = Registry("norm")


class _OneSampleCheck:
    """Batch statistics of one value are meaningless; say so, and what to change."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() // x.shape[1] <= 1:
            raise ValueError(f"batch norm in training needs more than one value per feature, got a batch of "
                             f"shape {tuple(x.shape)}; use a data.batch_size that leaves no batch of one, "
                             "or model.norm=layer (statistics per sample)")
        return super().forward(x)  # type: ignore[misc]


class BatchNorm1d(_OneSampleCheck, nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` with a readable error for a training batch of one."""


class BatchNorm2d(_OneSampleCheck, nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` with a readable error for a training batch of one."""


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


class Whiten(nn.Module):
    """ZCA whitening over the batch: decorrelated features of unit variance.

    In training, with ``X`` the centred batch ``(rows, features)`` (conv
    inputs: every position of every sample is a row, per channel)::

        S = X^T X / rows + eps * I,   W = U diag(lambda^-1/2) U^T  (S = U diag(lambda) U^T)
        y = gamma * (X W) + beta

    so ``cov(y) = I`` (before gamma/beta). ZCA is the whitening closest to the
    input, which is what batch norm approximates by ignoring the
    off-diagonal covariances. Evaluation uses running estimates of the mean
    and covariance, updated with ``momentum`` like batch norm.

    A batch of ``n`` rows has a covariance of rank below ``n``: whitening
    more features than that divides noise by near-zero eigenvalues. So the
    features are whitened in groups of ``group_size`` (Huang et al. 2018's
    decorrelated batch norm); ``group_size=num_features`` is full ZCA.

    Args:
        num_features: features (FC) or channels (conv).
        group_size: features whitened together (a divisor of ``num_features``;
            default: ``gcd(num_features, 16)``).
        eps: added to the covariance's diagonal.
        momentum: weight of the new batch in the running estimates.
        affine: learn gamma and beta per feature.
    """

    def __init__(self, num_features: int, group_size: int | None = None, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True) -> None:
        super().__init__()
        group_size = math.gcd(num_features, 16) if group_size is None else group_size
        if not isinstance(group_size, int) or group_size < 1 or num_features % group_size:
            raise ValueError(f"whitening needs a group_size dividing the {num_features} features, got "
                             f"group_size={group_size!r}")
        self.num_features, self.group_size, self.eps, self.momentum = num_features, group_size, eps, momentum
        groups = num_features // group_size
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_cov", torch.eye(group_size).repeat(groups, 1, 1))  # (groups, size, size)
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, features) or (batch, channels, *spatial)
        rows = x.movedim(1, -1).reshape(-1, self.num_features)  # (rows, features)
        n, groups = rows.shape[0], self.num_features // self.group_size
        if self.training:
            if n < 2:
                raise ValueError(f"whitening in training needs at least 2 rows per batch, got shape "
                                 f"{tuple(x.shape)}; use a larger data.batch_size")
            mean = rows.mean(0)
            centred = (rows - mean).view(n, groups, self.group_size)  # (rows, groups, size)
            cov = torch.einsum("ngi,ngj->gij", centred, centred) / n  # (groups, size, size)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_cov.lerp_(cov.detach() * n / (n - 1), self.momentum)
        else:
            centred = (rows - self.running_mean).view(n, groups, self.group_size)
            cov = self.running_cov
        eye = torch.eye(self.group_size, dtype=cov.dtype, device=cov.device)
        eigval, eigvec = torch.linalg.eigh(cov + self.eps * eye)
        zca = eigvec @ torch.diag_embed(eigval.rsqrt()) @ eigvec.transpose(1, 2)  # (groups, size, size), symmetric
        out = torch.einsum("ngi,gij->ngj", centred, zca).reshape(n, self.num_features)
        if self.weight is not None:
            out = out * self.weight + self.bias
        return out.reshape(x.movedim(1, -1).shape).movedim(-1, 1)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, group_size={self.group_size}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.weight is not None}")


WHITENINGS = ("zca", "pca", "standardise")


def whitening_matrix(cov: torch.Tensor, method: str = "zca", eps: float = 1e-5) -> torch.Tensor:
    """The matrix ``W`` of the linear map ``y = W (x - mean)`` that whitens features of covariance ``cov``.

    With ``cov + eps * I = U diag(lambda) U^T``, eigenvalues in decreasing order (Kessy et al. 2018)::

        zca:          W = U diag(lambda^-1/2) U^T   cov(y) = I; the whitening closest to x (y_i follows x_i)
        pca:          W = diag(lambda^-1/2) U^T     cov(y) = I; y_i is the i-th principal component: the axes
                                                    are rotated and reordered by variance
        standardise:  W = diag(cov_ii + eps)^-1/2   what batch norm does: unit variances, correlations kept

    Each principal direction's sign is fixed so that its largest entry is positive.

    Args:
        cov: the features' covariance ``(features, features)``, symmetric.
        method: one of :data:`WHITENINGS`.
        eps: added to the diagonal (keeps near-zero variances from blowing up).

    Returns:
        ``W`` ``(features, features)``; apply it to centred rows as ``(x - mean) @ W.T``.

    Raises:
        ValueError: an unknown ``method`` or a ``cov`` that is not square.

    Example:
        >>> w = whitening_matrix(torch.tensor([[2.0, 1.0], [1.0, 2.0]]), "pca", eps=0.0)
        >>> torch.allclose(w @ torch.tensor([[2.0, 1.0], [1.0, 2.0]]) @ w.T, torch.eye(2), atol=1e-6)
        True
    """
    if method not in WHITENINGS:
        raise ValueError(f"whitening method must be one of {', '.join(WHITENINGS)}, got {method!r}")
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"whitening needs a square covariance (features, features), got shape {tuple(cov.shape)}")
    if method == "standardise":
        return torch.diag((cov.diagonal() + eps).rsqrt())
    eigval, eigvec = torch.linalg.eigh(cov + eps * torch.eye(len(cov), dtype=cov.dtype, device=cov.device))
    eigval, eigvec = eigval.flip(0), eigvec.flip(1)  # decreasing variance
    biggest = eigvec.gather(0, eigvec.abs().argmax(0, keepdim=True))  # (1, features)
    eigvec = eigvec * torch.where(biggest < 0, -1.0, 1.0).to(eigvec.dtype)
    pca = eigval.rsqrt()[:, None] * eigvec.T  # (features, features): row i projects on direction i
    return pca if method == "pca" else eigvec @ pca


class CosineNorm(nn.Module):
    """Cosine normalisation of a linear or conv layer: ``h = w.x / (||w|| ||x||)``.

    Each output is the cosine of the angle between a weight vector and the
    input (for a conv layer, the input patch it sees), so it lies in [-1, 1]
    and does not change when ``w`` or ``x`` is scaled (Luo et al. 2017). The
    layer's bias is dropped: it would break the bound.

    Args:
        layer: an ``nn.Linear``, ``nn.Conv1d`` or ``nn.Conv2d`` (groups=1).
        eps: keeps the norms of all-zero inputs away from 0.
    """

    def __init__(self, layer: nn.Module, eps: float = 1e-12) -> None:
        super().__init__()
        if not isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)) or getattr(layer, "groups", 1) != 1:
            raise ValueError(f"cosine norm wraps a Linear, Conv1d or Conv2d layer with groups=1, got {layer}")
        layer.register_parameter("bias", None)
        self.layer, self.eps = layer, eps

    @property
    def weight(self) -> torch.Tensor:
        return self.layer.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.layer.weight  # (out, in, *kernel)
        w_norm = (w.flatten(1).square().sum(1) + self.eps).sqrt()  # (out,)
        if isinstance(self.layer, nn.Linear):
            x_norm = (x.square().sum(-1, keepdim=True) + self.eps).sqrt()  # (batch, 1)
            return F.linear(x, w) / (x_norm * w_norm)
        conv = self.layer._conv_forward  # the layer's own stride, padding and dilation
        ones = torch.ones((1,) + tuple(w.shape[1:]), dtype=w.dtype, device=w.device)
        x_norm = (conv(x.square(), ones, None) + self.eps).sqrt()  # (batch, 1, *out): norm of each patch
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return conv(x, w, None) / (x_norm * w_norm.view(shape))


def _weight(layer: nn.Module, dim: int = 0) -> nn.Module:
    """Weight norm (Salimans & Kingma 2016) through ``torch.nn.utils.parametrizations.weight_norm``."""
    return nn.utils.parametrizations.weight_norm(layer, dim=dim)


def _default_groups(num_channels: int) -> int:
    return math.gcd(num_channels, 32)


@NORMS.register("none", "no normalisation")
def _none(num_features: int, dims: int) -> nn.Module:
    return nn.Identity()


@NORMS.register("batch", "batch norm: per feature (FC) or per channel (conv) over the batch, running estimates "
                "for eval")
def _batch(num_features: int, dims: int, momentum: float = 0.1, eps: float = 1e-5) -> nn.Module:
    return (BatchNorm1d, BatchNorm1d, BatchNorm2d)[dims](num_features, eps=eps, momentum=momentum)


@NORMS.register("layer", "layer norm: statistics per sample over its features, gamma/beta per feature")
def _layer(num_features: int, dims: int, eps: float = 1e-5) -> nn.Module:
    return nn.LayerNorm(num_features, eps=eps) if dims == 0 else ChannelLayerNorm(num_features, eps=eps)


@NORMS.register("group", "group norm: statistics per sample over groups of channels (default gcd(width, 32) "
                "groups)")
def _group(num_features: int, dims: int, groups: int | None = None, eps: float = 1e-5) -> nn.Module:
    groups = _default_groups(num_features) if groups is None else groups
    if not isinstance(groups, int) or groups < 1 or num_features % groups:
        raise ValueError(f"group norm needs a number of groups dividing the {num_features} features, got "
                         f"groups={groups!r}")
    return nn.GroupNorm(groups, num_features, eps=eps)


@NORMS.register("whiten", "ZCA whitening over the batch: decorrelated, unit-variance features (the ideal), in groups of "
                "group_size features")
def _whiten(num_features: int, dims: int, group_size: int | None = None, eps: float = 1e-5,
            momentum: float = 0.1) -> nn.Module:
    return Whiten(num_features, group_size=group_size, eps=eps, momentum=momentum)


NORMS.add("weight", _weight, "weight norm: w = g * v / ||v||, the direction and length of each weight vector "
          "learned apart", wraps=True)
NORMS.add("cosine", CosineNorm, "cosine norm: h = w.x / (||w|| ||x||), outputs in [-1, 1], no bias", wraps=True)


def wraps_layer(name: str) -> bool:
    """Whether the norm ``name`` rewrites the layer's weights instead of following the layer."""
    return bool(NORMS.entry(name).meta.get("wraps", False))


def make_norm(name: str, num_features: int, dims: int = 0, **options: object) -> nn.Module:
    """Build the inserted norm ``name`` for ``num_features`` features or channels (Identity for wrapping norms)."""
    if wraps_layer(name):
        return nn.Identity()
    return NORMS.build(name, num_features, dims, **options)


def wrap_layer(name: str, layer: nn.Module, **options: object) -> nn.Module:
    """Apply the wrapping norm ``name`` to ``layer`` (``layer`` itself for inserted norms)."""
    if not wraps_layer(name):
        return layer
    return NORMS.build(name, layer, **options)
