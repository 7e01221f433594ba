"""Training losses by name (seed 001, section K of the spec).

A loss factory takes the number of classes, the training split's count per
class and its options, and returns ``f(logits, y)`` with ``logits`` of shape
``(batch, classes)`` (sequence tasks: ``(batch, classes, steps)``) and integer
targets ``y`` of shape ``(batch,)`` (``(batch, steps)``).

* ``cross_entropy`` works from logits (log-softmax inside, so no log(0));
* ``naive_cross_entropy`` takes ``log`` of the softmax probabilities: a
  probability that underflows to 0 gives an infinite loss and NaN gradients,
  the ``log_of_zero`` the doctor names;
* ``weighted_cross_entropy`` weights each class (``balanced``:
  ``n / (classes * count)``, as scikit-learn's ``class_weight="balanced"``);
* ``bce``: binary cross-entropy of one sigmoid per class against one-hot
  targets (from logits, stable);
* ``mse`` compares softmax (or sigmoid) outputs with one-hot targets; its
  gradient carries the activation's derivative, the comparison seed 001 makes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from trainwell.registry import Registry

__all__ = ["LOSSES", "balanced_weights", "make_loss", "summed_over_rows"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOSSES: Registry = Registry("loss")


def balanced_weights(counts: torch.Tensor) -> torch.Tensor:
    """``n / (classes * count_c)`` per class (0 for classes absent from the data)."""
    counts = counts.double()
    weights = counts.sum() / (len(counts) * counts)
    return torch.where(counts > 0, weights, torch.zeros_like(weights)).float()


def _one_hot(y: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    return F.one_hot(y, n_classes).movedim(-1, 1).to(like.dtype)  # (batch, classes, *steps)


@LOSSES.register("cross_entropy", "cross-entropy from logits (numerically stable log-softmax)")
def _cross_entropy(n_classes: int, counts: torch.Tensor, label_smoothing: float = 0.0) -> LossFn:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
    if label_smoothing == 0.0:
        return F.cross_entropy
    return lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing)


@LOSSES.register("naive_cross_entropy", "-log(softmax(logits)[y]) computed naively: log(0) = -inf when a "
                 "probability underflows (for demonstrations)")
def _naive_cross_entropy(n_classes: int, counts: torch.Tensor) -> LossFn:
    def naive(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        probs = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)
        return -torch.log(probs.gather(1, y.unsqueeze(1))).mean()

    return naive


@LOSSES.register("weighted_cross_entropy", "cross-entropy with a weight per class: balanced "
                 "(n / (classes * count)) or a given list")
def _weighted_cross_entropy(n_classes: int, counts: torch.Tensor,
                            weights: str | Sequence[float] = "balanced") -> LossFn:
    if isinstance(weights, str):
        if weights != "balanced":
            raise ValueError(f"weights must be 'balanced' or a list of {n_classes} numbers, got {weights!r}")
        w = balanced_weights(counts)
    else:
        w = torch.as_tensor(list(weights), dtype=torch.float32)
        if w.shape != (n_classes,) or not bool(torch.all(w >= 0)) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"weights must be {n_classes} finite numbers >= 0 (one per class), got {list(weights)}")

    def weighted(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=w.to(logits.device, logits.dtype))

    weighted.class_weights = w  # type: ignore[attr-defined]
    return weighted


@LOSSES.register("bce", "binary cross-entropy of a sigmoid per class against one-hot targets (from logits)")
def _bce(n_classes: int, counts: torch.Tensor) -> LossFn:
    return lambda logits, y: F.binary_cross_entropy_with_logits(logits, _one_hot(y, n_classes, logits))


@LOSSES.register("mse", "mean squared error between softmax (or sigmoid: output=sigmoid) outputs and one-hot "
                 "targets")
def _mse(n_classes: int, counts: torch.Tensor, output: str = "softmax") -> LossFn:
    if output not in ("softmax", "sigmoid"):
        raise ValueError(f"output must be 'softmax' or 'sigmoid', got {output!r}")
    squash = (lambda z: z.softmax(dim=1)) if output == "softmax" else torch.sigmoid

    def mse(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(squash(logits), _one_hot(y, n_classes, logits))

    return mse


def make_loss(name: str, n_classes: int, counts: torch.Tensor | None = None, **options: object) -> LossFn:
    """Return the loss function registered under ``name``.

    Args:
        name: a name from :data:`LOSSES`.
        n_classes: classes of the logits.
        counts: training rows per class ``(n_classes,)`` (for ``balanced``
            weights; None: equal counts).
        **options: the loss's options (``weights``, ``output``, ``label_smoothing``).
    """
    counts = torch.ones(n_classes) if counts is None else torch.as_tensor(counts)
    return LOSSES.build(name, n_classes, counts, **options)


def summed_over_rows(loss_fn: Callable, loss: torch.Tensor, rows: int) -> torch.Tensor:
    """A batch's loss summed over its rows, as a float64 tensor: the mean times ``rows``, or, for a loss that
    sums itself (``reduction="sum"``, as torch's loss modules say), the loss as it is. Divided by the rows
    of an epoch it is the mean loss a row, whichever the reduction: the training and validation losses
    of a run then share a scale."""
    total = loss.detach().double()
    return total if getattr(loss_fn, "reduction", None) == "sum" else total * rows
