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

__all__ = ["audit"]

IMBALANCE_RATIO = 0.2     # smallest class count / largest below this: imbalanced
SCALE_SPREAD = 100.0      # largest feature std / smallest above this: unscaled
OFF_CENTRE = 10.0         # |mean| / std above this for some feature: unscaled


def _rows(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().reshape(len(x), math.prod(x.shape[1:])).numpy()  # also for 0 rows


def _digests(x: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(r).tobytes(), digest_size=16).digest() for r in x]


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
    for name, r in floating.items():
        bad = np.flatnonzero(~np.isfinite(r).all(axis=1))
        if len(bad):
            findings.append(Finding("bad_input", "error", 0, 0, {"split": name, "rows": bad[:20].tolist(),
                                                               "n_rows": int(len(bad))}, cause="bad_input",
                                    remedy="drop or fix the listed rows (doctor.repair drops them)"))
    for name, s in splits.items():
        y = s.y.detach().cpu().reshape(len(s.y), math.prod(s.y.shape[1:])).numpy()
        if n_classes is not None:
            bad = np.flatnonzero(((y < 0) | (y >= n_classes)).any(axis=1))
            if len(bad):
                findings.append(Finding("bad_input", "error", 0, 0, {"split": name, "label_rows": bad[:20].tolist(),
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
                                    overrides=[] if standardized else ["data.standardize=true"]))
    return findings
