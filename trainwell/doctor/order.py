"""The doctor's check of the batches' order: rows walked in the data's order, never shuffled.

:class:`OrderRules` is the part of :class:`~trainwell.doctor.Doctor` that
counts the classes of each sampled batch's targets (1-D integer labels) and,
at the end of the first epoch that has enough of them, asks how likely
those batches are under shuffling. The class shares ``p_k`` are the pooled
counts of the epoch's sampled batches (an epoch walks all the rows, in
whatever order); a batch of ``B`` rows that holds only the classes ``S``
has the chance ``(sum_{k in S} p_k)^B`` of doing so when its rows are
drawn at random. Sorted data make that ~0 for nearly every batch (one class
of ten in 64 rows: 1e-64); shuffled data make it ~1 for most, and a
majority class that fills a small batch alone keeps it large (0.94^32 =
0.14). The median over the sampled batches below ``unshuffled_chance`` is
the finding.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch

__all__ = ["OrderRules"]


class OrderRules:
    """The order check, mixed into :class:`~trainwell.doctor.Doctor` (which holds the state it reads)."""

    def _init_order(self) -> None:
        self._order_batches: list[tuple[int, list[int]]] = []  # (rows, classes present) of sampled batches
        self._order_counts: dict[int, int] = {}
        self._order_judged = False

    def _watch_order(self, targets: Any) -> None:
        """On a sampled step: the classes of the batch's targets (1-D integer labels of two rows or more)."""
        if self._order_judged or not isinstance(targets, torch.Tensor) or targets.dim() != 1 or len(targets) < 2 \
                or targets.is_floating_point() or targets.is_complex() or int(targets.min()) < 0:
            return
        counts = torch.bincount(targets.detach()).tolist()
        present = [k for k, c in enumerate(counts) if c]
        self._order_batches.append((len(targets), present))
        for k in present:
            self._order_counts[k] = self._order_counts.get(k, 0) + counts[k]

    def _judge_order(self) -> None:
        """At an epoch's end (or the doctor's close): judged once, on the first epoch with enough batches."""
        batches = self._order_batches
        if self._order_judged or len(batches) < self.t.order_batches:
            return
        self._order_judged = True
        total = sum(self._order_counts.values())
        share = {k: c / total for k, c in self._order_counts.items()}
        if len(share) < 2:
            return
        chances = [rows * math.log10(min(1.0, sum(share[k] for k in present))) for rows, present in batches]
        median = statistics.median(chances)
        if median < math.log10(self.t.unshuffled_chance):
            self._found("unshuffled_batches", "warning",
                        {"sampled_batches": len(batches), "classes_seen": len(share),
                         "median_classes_in_batch": statistics.median(len(p) for _, p in batches),
                         "median_log10_chance_if_shuffled": median})
        self._order_batches, self._order_counts = [], {}
