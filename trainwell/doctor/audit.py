"""The data audit: what is wrong with the data before any training (run by the trainer first).

Checks, per split: non-finite values (with row indices), labels outside the
model's outputs, rows shared between splits (leakage, "数据穿越"), byte-identical
or near-copies (resampling or noisy duplication before the split), class
imbalance, the inputs' absolute scale and offset, and constant features.

Near-copies: for a sample of validation and test rows, the distances to
their 16 nearest training rows (standardised features). Where the data are
locally a Poisson process of dimension m (estimated per row from the 8th and
16th distances, which lie beyond any small cluster of copies), the chance
that the nearest is closer than ``NEAR`` times the 16th is
``1 - (1 - NEAR^m)^15``. Leakage when the observed share exceeds that
expectation by ``NEAR_EXCESS``: clean benchmark sets
measure an excess of -0.13 to 0.00, sets with SMOTE or noisy copies applied
before the split 0.14 to 0.63.

Shifted copies: a validation or test row whose second half-window (its
values from a shift ``s`` on) is the first half of a training row: the two
are overlapping windows of one series, split at random (Kapoor and
Narayanan 2023), and the row's label is visible in training. Equal runs of
half a row, at a shift and with at least a quarter of the row's width in
distinct values, do not happen by chance in measured data; padding and
small-integer pixels (few distinct values) are not counted. Leakage when the
share of such rows among those measured exceeds ``NEAR_EXCESS``.

Scale: the first layer's pre-activation has the spread of its input's second
moment ``sqrt(mean_j E[x_j^2])`` (weights initialised for unit inputs); far
from 1 (outside 1/10 to 10) the start is miscalibrated, as for images in
[0, 255]. An offset (``|mean| / std`` above 10 for a varying feature) puts
a constant into every pre-activation that carries no information. Features
whose std is below 1e-3 of the median feature's are near-constant: left out
of both and reported as ``constant_features`` (info).
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
SCALE_FAR = 10.0          # the inputs' RMS outside [1/10, 10]: unscaled ([0, 1] images 0.5, [0, 255] ones 130)
OFF_CENTRE = 10.0         # |mean| / std above this for a varying feature: an offset
NEAR_CONSTANT = 1e-3      # a feature's std below this share of the median feature's: near-constant
NEAR = 0.15               # a nearest training row closer than this share of the 16th: a near-copy candidate
NEAR_EXCESS = 0.08        # near-copy share above the Poisson expectation by this much: leakage
NEAR_SAMPLE = 300         # validation and test rows measured (the cost stays ~ms)


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
    near = _near_copies(floating) if not shared else None
    shifted = _shifted_copies(floating) if not shared and near is None else None
    if shared:
        findings.append(Finding("data_leakage", "warning", 0, 0, {"shared_rows": shared}))
    elif shifted is not None:
        findings.append(Finding("data_leakage", "warning", 0, 0, shifted, cause="overlapping_windows",
                                remedy="split the series in time (whole stretches to train, validation and test) "
                                       "before cutting windows: neighbouring windows share most of their values"))
    elif near is not None:
        findings.append(Finding("data_leakage", "warning", 0, 0, near, cause="near_duplicates",
                                remedy="resample or add noisy copies after the split, to the training rows only; "
                                       "validation and test scores are too optimistic"))
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
    if "train" in floating and train.x.dim() >= 2 and len(floating["train"]) > 1:
        finite = floating["train"][np.isfinite(floating["train"]).all(axis=1)]  # non-finite rows: bad_input
        if len(finite) > 1:
            findings += _scale(finite, standardized)
    return findings


def _scale(r: np.ndarray, standardized: bool) -> list[Finding]:
    """The inputs' absolute scale and offset, and their near-constant features (see the module docstring)."""
    std, mean = r.std(axis=0), r.mean(axis=0)
    constant = std <= NEAR_CONSTANT * max(float(np.median(std)), 1e-12)
    findings = []
    if constant.any():
        findings.append(Finding("constant_features", "info", 0, 0, {"n": int(constant.sum()),
                                                                    "features": np.flatnonzero(constant)[:20].tolist()}))
    varying = ~constant
    if not varying.any():
        return findings
    rms = float(np.sqrt(np.mean(r[:, varying].astype(np.float64) ** 2)))
    centre = float((np.abs(mean[varying]) / std[varying]).max())
    if not (1 / SCALE_FAR <= rms <= SCALE_FAR) or centre > OFF_CENTRE:
        findings.append(Finding("unscaled_inputs", "info" if standardized else "warning", 0, 0,
                                {"input_rms": rms, "max_mean_over_std": centre,
                                 "feature_std_range": [float(std[varying].min()), float(std[varying].max())],
                                 "standardized_by_model": standardized}, cause="input_scale",
                                remedy="none needed: the model standardises its inputs" if standardized else "",
                                remedies=[] if standardized else [StandardizeInputs()]))
    return findings


def _near_copies(floating: dict[str, np.ndarray], k: int = 16) -> dict[str, Any] | None:
    """Validation/test rows that are near-copies of training rows, beyond what chance gives (module docstring)."""
    train = floating.get("train")
    others = [floating[n] for n in ("val", "test") if n in floating and len(floating[n])]
    if train is None or not others or len(train) <= k:
        return None
    tr = torch.from_numpy(np.ascontiguousarray(train, dtype=np.float32))
    mu, sd = tr.mean(0), tr.std(0).clamp_min(1e-8)
    q = torch.from_numpy(np.ascontiguousarray(np.concatenate(others), dtype=np.float32))
    q = q[torch.randperm(len(q), generator=torch.Generator().manual_seed(0))[:NEAR_SAMPLE]]
    ok = torch.isfinite(q).all(1)
    tr, q = (tr[torch.isfinite(tr).all(1)] - mu) / sd, (q[ok] - mu) / sd
    if len(q) < 20 or len(tr) <= k:
        return None
    dist = torch.cdist(q, tr).topk(k, largest=False).values  # (rows, k), ascending
    d1, mid, far = dist[:, 0], dist[:, k // 2 - 1], dist[:, -1]
    m = (math.log(2) / torch.log(far / mid.clamp_min(1e-12)).clamp_min(1e-6)).clamp(0.5, 50.0)  # local dimension
    expected = float((1 - (1 - NEAR ** m) ** (k - 1)).mean())
    observed = float((d1 < NEAR * far).float().mean())
    if observed - expected > NEAR_EXCESS:
        return {"near_copy_share": observed, "expected_by_chance": expected, "rows_measured": len(q)}
    return None


def _shifted_copies(floating: dict[str, np.ndarray], most_shift: int = 64) -> dict[str, Any] | None:
    """Validation/test rows that are training rows shifted by 1 to ``most_shift`` positions (module docstring).

    Half-rows are compared by a fingerprint of their bits (a random linear map of the float32 words, exact in
    unsigned 64-bit arithmetic: equal half-rows give equal fingerprints whatever the memory layout), and each
    candidate is then compared value by value.
    """
    train = floating.get("train")
    others = [floating[n] for n in ("val", "test") if n in floating and len(floating[n])]
    if train is None or not others or train.shape[1] < 8:
        return None
    width = train.shape[1]
    half, shifts = width // 2, min(width - width // 2, most_shift)
    q = np.concatenate(others)
    q = q[torch.randperm(len(q), generator=torch.Generator().manual_seed(0))[:NEAR_SAMPLE].numpy()]
    if len(q) < 20:
        return None
    weights = np.random.default_rng(0).integers(1, 2 ** 63, size=half, dtype=np.uint64) | np.uint64(1)

    def prints(segments: np.ndarray) -> np.ndarray:
        bits = np.ascontiguousarray(segments, dtype=np.float32).view(np.uint32).astype(np.uint64)
        return (bits * weights).sum(axis=-1)  # wraps modulo 2^64: exact

    starts = prints(train[:, :half])
    windows = np.lib.stride_tricks.sliding_window_view(q, half, axis=1)[:, 1:shifts + 1]  # (rows, shifts, half)
    found = np.isin(prints(windows), starts)
    first = {int(v): i for i, v in reversed(list(enumerate(starts)))}
    hits, example = 0, None
    for r in np.flatnonzero(found.any(axis=1)):
        for shift in np.flatnonzero(found[r]) + 1:
            segment = q[r, shift:shift + half]
            i = first[int(prints(segment))]
            if np.array_equal(segment, train[i, :half]) and np.unique(segment).size >= width // 4:
                hits += 1
                example = example or {"shift": int(shift), "train_row": i}
                break
    if hits / len(q) > NEAR_EXCESS:
        return {"shifted_copy_share": hits / len(q), "rows_measured": len(q), "example": example}
    return None
