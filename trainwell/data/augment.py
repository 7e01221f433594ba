"""Data augmentation (seed 002: more data against overfitting), for training batches only.

On the fly, each training batch gets fresh random changes (``augment_batch``,
applied by the loop's :class:`~trainwell.loop.Augment` callback; validation
and test are never touched):

* ``noise``: Gaussian noise of this standard deviation on every feature
  (on standardised features, it is in units of each feature's spread);
* ``shift``: 1-D signals move by up to this many steps (zeros fill in);
* ``rotate``: images turn by up to this many degrees;
* ``crop``: signals and images are padded by this many zeros on every side
  and cropped back at a random place (a random crop).

Before training, the training split can also grow (``expand_training_rows``):

* ``duplicate``: copies of every row with Gaussian noise ``noise`` (or 0.1 of
  each feature's spread when ``noise`` is 0);
* ``gaussian``: new rows drawn from a Gaussian fitted to each class
  (its mean and diagonal variance), in proportion to the class sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["augment_batch", "check_augmentation", "expand_training_rows"]


def _shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:  # (batch, length)
    n, length = x.shape
    offsets = torch.randint(-max_shift, max_shift + 1, (n,), generator=g)
    idx = torch.arange(length).unsqueeze(0) - offsets.unsqueeze(1)  # (batch, length)
    valid = (idx >= 0) & (idx < length)
    return torch.where(valid, x.gather(1, idx.clamp(0, length - 1)), torch.zeros((), dtype=x.dtype))


def _crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:  # (batch, *spatial)
    spatial = x.shape[1:]
    padded = F.pad(x, [pad, pad] * len(spatial))
    out = torch.empty_like(x)
    starts = torch.randint(0, 2 * pad + 1, (len(x), len(spatial)), generator=g)
    for i in range(len(x)):
        window = tuple(slice(int(s), int(s) + n) for s, n in zip(starts[i], spatial))
        out[i] = padded[(i, *window)]
    return out


def _rotate(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:  # (batch, h, w)
    angles = (torch.rand(len(x), generator=g) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1).to(x.dtype)  # (batch, 2, 3)
    grid = F.affine_grid(theta, (len(x), 1, *x.shape[1:]), align_corners=False)
    return F.grid_sample(x.unsqueeze(1), grid, align_corners=False, padding_mode="zeros").squeeze(1)


def check_augmentation(kind: str, *, shift: int = 0, rotate: float = 0.0, crop: int = 0) -> None:
    """Raise a ``ValueError`` for a change that does not fit data of ``kind`` (a rotation of signals, ...)."""
    if shift and kind != "signal":
        raise ValueError(f"data.augment.shift moves 1-D signals; this data set is {kind}")
    if rotate and kind != "image":
        raise ValueError(f"data.augment.rotate turns images; this data set is {kind}")
    if crop and kind not in ("signal", "image"):
        raise ValueError(f"data.augment.crop needs signals or images; this data set is {kind}")


def augment_batch(x: torch.Tensor, kind: str, g: torch.Generator, *, noise: float = 0.0,
                  scale: torch.Tensor | None = None, shift: int = 0, rotate: float = 0.0,
                  crop: int = 0) -> torch.Tensor:
    """One random augmentation of a batch ``x`` ``(batch, *input_shape)`` of ``kind`` tabular/signal/image.

    Noise is ``noise * scale`` per feature (``scale``: e.g. each feature's std; default 1).

    Raises:
        ValueError: a change that does not fit the data (see :func:`check_augmentation`).
    """
    check_augmentation(kind, shift=shift, rotate=rotate, crop=crop)
    x = x.detach().cpu()
    if rotate:
        x = _rotate(x, rotate, g)
    if shift:
        x = _shift(x, shift, g)
    if crop:
        x = _crop(x, crop, g)
    if noise:
        x = x + noise * (1.0 if scale is None else scale) * torch.randn(x.shape, generator=g, dtype=x.dtype)
    return x


def expand_training_rows(x: torch.Tensor, y: torch.Tensor, *, duplicate: int = 0, gaussian: int = 0,
                         noise: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """More training rows: ``duplicate`` noisy copies of each row, ``gaussian`` times the rows drawn from
    per-class Gaussians. Returns the original rows followed by the new ones."""
    g = torch.Generator().manual_seed(seed)
    std = x.std(0, unbiased=False)
    xs, ys = [x], [y]
    for _ in range(duplicate):
        sigma = noise * std if noise else 0.1 * std
        xs.append(x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype))
        ys.append(y)
    if gaussian:
        for c in torch.unique(y):
            rows = x[y == c]
            mean, spread = rows.mean(0), rows.std(0, unbiased=False)
            n = gaussian * len(rows)
            xs.append(mean + spread * torch.randn((n, *x.shape[1:]), generator=g, dtype=x.dtype))
            ys.append(torch.full((n,), int(c), dtype=y.dtype))
    return torch.cat(xs), torch.cat(ys)
