"""A class-balancing torch ``Sampler`` that also shards across processes (DistributedDataParallel).

torch's ``WeightedRandomSampler`` draws rows with given probabilities but
cannot be split between ranks, and ``DistributedSampler`` shards a data set
but ignores weights. :class:`DistributedWeightedSampler` does both: every
rank draws the same weighted sample (from a generator seeded by ``seed`` and
the epoch) and keeps every ``num_replicas``-th index starting at its ``rank``,
so the ranks together see exactly one weighted sample per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

__all__ = ["DistributedWeightedSampler", "balanced_row_weights"]


def balanced_row_weights(labels: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``1 / count(class of the row)``: a weighted draw then sees every class equally often."""
    y = torch.as_tensor(labels).long()
    counts = torch.bincount(y)
    return 1.0 / counts[y].double()


class DistributedWeightedSampler(Sampler[int]):
    """Weighted random rows, split between ``num_replicas`` processes.

    Args:
        weights: one non-negative weight per row (e.g. :func:`balanced_row_weights`).
        num_samples: rows drawn per epoch over all ranks (default: as many as weights).
        num_replicas, rank: the process group's size and this process's rank
            (default: from ``torch.distributed`` when initialised, else 1 and 0).
        replacement: draw with replacement.
        seed: the shared seed; call :meth:`set_epoch` every epoch, as with ``DistributedSampler``.
    """

    def __init__(self, weights: Sequence[float] | torch.Tensor, num_samples: int | None = None, *,
                 num_replicas: int | None = None, rank: int | None = None, replacement: bool = True,
                 seed: int = 0) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        if self.weights.dim() != 1 or not bool((self.weights >= 0).all()) or not float(self.weights.sum()) > 0:
            raise ValueError("weights must be one non-negative number per row, not all zero")
        if num_replicas is None or rank is None:
            dist = torch.distributed
            ready = dist.is_available() and dist.is_initialized()
            num_replicas = num_replicas if num_replicas is not None else (dist.get_world_size() if ready else 1)
            rank = rank if rank is not None else (dist.get_rank() if ready else 0)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must lie in [0, {num_replicas}), got {rank}")
        self.num_samples = num_samples if num_samples is not None else len(self.weights)
        if not replacement and self.num_samples > int((self.weights > 0).sum()):
            raise ValueError(f"cannot draw {self.num_samples} rows without replacement from "
                             f"{int((self.weights > 0).sum())} with a weight above 0")
        self.num_replicas, self.rank, self.replacement, self.seed = num_replicas, rank, replacement, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.num_samples, self.replacement, generator=g)
        return iter(drawn[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return len(range(self.rank, self.num_samples, self.num_replicas))
