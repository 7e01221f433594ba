"""The data audit: what is wrong with the data before any training (run by the trainer first).

Checks, per split: non-finite values (with row indices), labels outside the
model's outputs, rows shared between splits (leakage, "数据穿越"), class
imbalance, and features of very different scales or constant ones.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch

from trainwell.doctor.findings import Finding
from trainwell.doctor.remedies import StandardizeInputs

__all__ = ["BAD_LABELS", "NON_FINITE", "audit", "unusable_rows"]

IMBALANCE_RATIO = 0.2     # smallest class count / largest below this: imbalanced
SCALE_SPREAD = 100.0      # largest feature std / smallest above this: unscaled
OFF_CENTRE = 10.0         # |mean| / std above this for some feature: unscaled


def _rows(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().reshape(len(x), math.prod(x.shape[1:])).numpy()  # also for 0 rows


def _digests(x: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(r).tobytes(), digest_size=16).digest() for r in x]


NON_FINITE, BAD_LABELS = "non-finite values", "labels outside the classes"


def unusable_rows(split: Any, n_classes: int | None = None) -> dict[str, torch.Tensor]:
    """Masks over a split's rows that no model can train on.

    ``NON_FINITE``: a feature is NaN or infinite (the loss turns NaN);
    ``BAD_LABELS`` (with ``n_classes``): a label outside ``0..n_classes-1``
    (the loss stops with an index error). A split may have no rows.
    """
    def per_row(mask: torch.Tensor) -> torch.Tensor:
        return mask.flatten(1).any(dim=1) if mask.dim() > 1 else mask

    x, y = split.x.detach().cpu(), split.y.detach().cpu()
    masks = {NON_FINITE: per_row(~torch.isfinite(x)) if x.is_floating_point()
             else torch.zeros(len(x), dtype=torch.bool)}
    if n_classes is not None:
        masks[BAD_LABELS] = per_row((y < 0) | (y >= n_classes))
    return masks


def audit(train: Any, val: Any = None, test: Any = None, *, n_classes: int | None = None,
          standardized: bool = False, balanced: bool = False) -> list[Finding]:
    """Audit the splits (objects with ``x`` and ``y`` tensors) before training.

    Args:
        train, val, test: the splits (val and test optional).
        n_classes: the model's outputs; labels outside ``[0, n_classes)`` are reported.
        standardized: the model standardises its inputs (unscaled features are then only ``info``).
        balanced: the training already treats class imbalance (class weights, resampling): imbalance
            is then only ``info``.

    Returns:
        Findings (step 0, epoch 0): ``bad_input`` (error), ``data_leakage``,
        ``class_imbalance``, ``unscaled_inputs``.

    Example:
        >>> from trainwell.data import load_data
        >>> d = load_data("breast_cancer")
        >>> [f.symptom for f in audit(d.train, d.val, d.test, n_classes=2)]
        ['unscaled_inputs']
    """
    splits = {name: s for name, s in (("train", train), ("val", val), ("test", test)) if s is not None}
    findings: list[Finding] = []
    rows = {name: _rows(s.x) for name, s in splits.items()}
    floating = {name: r for name, r in rows.items() if np.issubdtype(r.dtype, np.floating)}
    unusable = {name: unusable_rows(s, n_classes) for name, s in splits.items()}
    for name, masks in unusable.items():
        bad = masks[NON_FINITE].nonzero().flatten().tolist()
        if bad:
            findings.append(Finding("bad_input", "error", 0, 0, {"split": name, "rows": bad[:20],
                                                               "n_rows": len(bad)}, cause="bad_input",
                                    remedy="drop or fix the listed rows (doctor.repair drops them)"))
    for name, masks in unusable.items():
        bad = masks[BAD_LABELS].nonzero().flatten().tolist() if BAD_LABELS in masks else []
        if bad:
            findings.append(Finding("bad_input", "error", 0, 0, {"split": name, "label_rows": bad[:20],
                                                               "n_classes": n_classes}, cause="bad_input",
                                    remedy=f"labels must lie in 0..{n_classes - 1}"))
    digests = {name: _digests(r) for name, r in rows.items()}
    seen: dict[bytes, str] = {}
    shared: dict[str, int] = {}
    for name in digests:
        for d in set(digests[name]):
            if d in seen and seen[d] != name:
                pair = f"{seen[d]}/{name}"
                shared[pair] = shared.get(pair, 0) + 1
            seen.setdefault(d, name)
    if shared:
        findings.append(Finding("data_leakage", "warning", 0, 0, {"shared_rows": shared}))
    y = train.y.detach().cpu().flatten().numpy()
    y = y[(y >= 0) & (y < n_classes)] if n_classes is not None else y[y >= 0]  # labels out of range: bad_input
    if y.size and train.y.dim() == 1:
        counts = np.bincount(y.astype(np.int64), minlength=n_classes or 0)
        present = counts[counts > 0]
        if len(present) > 1 and present.min() / present.max() < IMBALANCE_RATIO:
            minority = np.flatnonzero((counts > 0) & (counts < IMBALANCE_RATIO * counts.max())).tolist()
            findings.append(Finding("class_imbalance", "info" if balanced else "warning", 0, 0,
                                    {"class_counts": counts.tolist(), "minority_classes": minority},
                                    remedy="none needed: the training already weights or resamples the classes"
                                    if balanced else ""))
    if "train" in floating and train.x.dim() >= 2:
        r = floating["train"]
        std, mean = r.std(axis=0), r.mean(axis=0)
        constant = int((std < 1e-8).sum())
        varying = std >= 1e-8
        spread = float(std[varying].max() / std[varying].min()) if varying.any() else 1.0
        centre = float((np.abs(mean[varying]) / std[varying]).max()) if varying.any() else 0.0
        if spread > SCALE_SPREAD or centre > OFF_CENTRE:
            findings.append(Finding("unscaled_inputs", "info" if standardized else "warning", 0, 0,
                                    {"std_spread": spread, "max_mean_over_std": centre,
                                     "constant_features": constant, "standardized_by_model": standardized},
                                    remedy="none needed: the model standardises its inputs" if standardized else "",
                                    remedies=[] if standardized else [StandardizeInputs()]))
    return findings
