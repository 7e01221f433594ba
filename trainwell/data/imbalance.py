"""Class imbalance: resampling the training rows (seed 003, spec J), the imbalanced-learn way.

Every sampler follows imbalanced-learn's API: the constructor only stores its
keyword arguments; ``fit_resample(X, y)`` returns the resampled rows; what it
learned ends in ``_`` (``sampling_strategy_``, ``sample_indices_`` for the
samplers that keep original rows). ``sampling_strategy`` means what it means
there:

* over-samplers: ``"auto"`` (= ``"not majority"``), ``"minority"``,
  ``"not minority"``, ``"all"``; a float (two classes only) is the wanted
  ratio minority / majority after resampling; a dict is the wanted count per class;
* under-samplers: ``"auto"`` (= ``"not minority"``), ``"majority"``,
  ``"not majority"``, ``"all"``; a float is the same ratio; a dict the count kept per class.

==================== ==============================================================
``RandomOverSampler`` duplicate random minority rows (with ``shrinkage``: plus
                      Gaussian jitter, a smoothed bootstrap)
``RandomUnderSampler`` drop random majority rows
``SMOTE``             new minority rows on the segment from a row to one of its
                      ``k_neighbors`` nearest same-class neighbours (Chawla 2002)
``NearMiss``          keep the majority rows closest to the minority (version 1:
                      smallest mean distance to the k nearest minority rows; 2: to
                      the k farthest; 3: among each minority row's nearest majority
                      rows, those farthest from the minority) (Mani & Zhang 2003)
==================== ==============================================================
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import numpy as np

from trainwell.registry import Registry

__all__ = ["SAMPLERS", "SMOTE", "NearMiss", "RandomOverSampler", "RandomUnderSampler", "resample_split",
           "sampling_targets"]

Strategy = str | float | dict[Any, int]


def _counts(y: np.ndarray) -> dict[Any, int]:
    return dict(sorted(Counter(y.tolist()).items()))


def _check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one label per row (1-D), got shape {y.shape}")
    if y.dtype.kind not in "iubUSO":
        raise ValueError(f"y must hold class labels (integers or strings), got {y.dtype}; "
                         "resampling needs classes, not continuous targets")
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (rows, features) with one row per label, got X {X.shape} and y {y.shape}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values; drop or fix those rows before resampling")
    if len(np.unique(y)) < 2:
        raise ValueError(f"resampling needs at least two classes, got class counts {_counts(y)}")
    return X, y


def sampling_targets(y: np.ndarray, strategy: Strategy, kind: str) -> dict[Any, int]:
    """imbalanced-learn's ``sampling_strategy_``: per class, rows to generate (``over``) or to keep (``under``).

    Raises:
        ValueError: a strategy that cannot be met, naming the class counts.
    """
    counts = _counts(y)
    n_min, n_maj = min(counts.values()), max(counts.values())
    minority = min(counts, key=counts.get)
    majority = max(counts, key=counts.get)
    over = kind == "over"
    if isinstance(strategy, str):
        named = {"auto": "not majority" if over else "not minority"}.get(strategy, strategy)
        chosen = {"minority": [minority], "majority": [majority],
                  "not minority": [c for c in counts if c != minority],
                  "not majority": [c for c in counts if c != majority], "all": list(counts)}.get(named)
        if chosen is None or (over and named == "majority") or (not over and named == "minority"):
            valid = "auto, minority, not minority, not majority, all" if over else \
                "auto, majority, not minority, not majority, all"
            raise ValueError(f"sampling_strategy {strategy!r} is not one of {valid}")
        return {c: (n_maj - counts[c]) if over else n_min for c in chosen}
    if isinstance(strategy, float):
        if len(counts) != 2:
            raise ValueError(f"a float sampling_strategy needs two classes, got class counts {counts}; "
                             "use a dict of counts per class")
        if not 0 < strategy <= 1:
            raise ValueError(f"sampling_strategy must be a ratio in (0, 1], got {strategy}")
        if over:
            wanted = int(n_maj * strategy)
            if wanted < n_min:
                raise ValueError(f"sampling_strategy={strategy} asks for {wanted} minority rows but there are "
                                 f"already {n_min} (class counts {counts}); over-sampling cannot remove rows")
            return {minority: wanted - n_min}
        wanted = int(n_min / strategy)
        if wanted > n_maj:
            raise ValueError(f"sampling_strategy={strategy} asks for {wanted} majority rows but there are only "
                             f"{n_maj} (class counts {counts}); under-sampling cannot add rows")
        return {majority: wanted}
    if isinstance(strategy, dict):
        unknown = set(strategy) - set(counts)
        if unknown:
            raise ValueError(f"sampling_strategy names classes not in y: {sorted(unknown)} (class counts {counts})")
        out = {}
        for c, wanted in strategy.items():
            if over and wanted < counts[c]:
                raise ValueError(f"sampling_strategy wants {wanted} rows of class {c!r}, which has {counts[c]} "
                                 f"(class counts {counts}); over-sampling cannot remove rows")
            if not over and wanted > counts[c]:
                raise ValueError(f"sampling_strategy wants {wanted} rows of class {c!r}, which has only "
                                 f"{counts[c]} (class counts {counts}); under-sampling cannot add rows")
            out[c] = wanted - counts[c] if over else wanted
        return out
    raise ValueError(f"sampling_strategy must be a name, a float or a dict, got {type(strategy).__name__}")


class _Sampler:
    """Shared: argument storage, validation, the strategy."""

    _kind = "over"

    def __init__(self, *, sampling_strategy: Strategy = "auto", random_state: int | None = None) -> None:
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def fit_resample(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Resample ``X`` ``(rows, features)`` and ``y`` ``(rows,)``; return the new ``(X, y)``."""
        X, y = _check_xy(X, y)
        self.sampling_strategy_ = sampling_targets(y, self.sampling_strategy, self._kind)
        return self._fit_resample(X, y, np.random.default_rng(self.random_state))

    def _fit_resample(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class RandomOverSampler(_Sampler):
    """Duplicate random rows of the classes to grow.

    Args:
        sampling_strategy, random_state: see the module docstring.
        shrinkage: None (exact copies) or a factor of Gaussian jitter added to
            each copy: per feature, ``shrinkage * std_class * (4 / ((d + 2) n))^(1 / (d + 4))``
            (a smoothed bootstrap with Silverman's bandwidth, as imbalanced-learn).
    """

    def __init__(self, *, sampling_strategy: Strategy = "auto", random_state: int | None = None,
                 shrinkage: float | None = None) -> None:
        super().__init__(sampling_strategy=sampling_strategy, random_state=random_state)
        self.shrinkage = shrinkage

    def _fit_resample(self, X, y, rng):
        if self.shrinkage is not None and self.shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {self.shrinkage}")
        new_x, new_idx = [X], [np.arange(len(y))]
        for c, n_new in self.sampling_strategy_.items():
            rows = np.flatnonzero(y == c)
            pick = rows[rng.integers(0, len(rows), size=n_new)]
            copies = X[pick].astype(float) if self.shrinkage is not None else X[pick]
            if self.shrinkage is not None and n_new:
                n, d = len(rows), X.shape[1]
                bandwidth = (4 / ((d + 2) * n)) ** (1 / (d + 4))
                copies = copies + rng.standard_normal(copies.shape) * self.shrinkage * bandwidth * X[rows].std(0)
            new_x.append(copies)
            new_idx.append(pick)
        self.sample_indices_ = np.concatenate(new_idx)
        return np.concatenate(new_x).astype(np.result_type(*new_x)), y[self.sample_indices_]


class RandomUnderSampler(_Sampler):
    """Keep a random subset of the classes to shrink (without replacement)."""

    _kind = "under"

    def _fit_resample(self, X, y, rng):
        keep = []
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            if c in self.sampling_strategy_:
                rows = rows[np.sort(rng.choice(len(rows), size=self.sampling_strategy_[c], replace=False))]
            keep.append(rows)
        self.sample_indices_ = np.concatenate(keep)
        return X[self.sample_indices_], y[self.sample_indices_]


class SMOTE(_Sampler):
    """Synthetic minority over-sampling: ``x + u (x_nn - x)``, ``u ~ U(0, 1)``, ``x_nn`` one of the
    ``k_neighbors`` nearest rows of the same class.

    Raises:
        ValueError: a class to grow has ``k_neighbors`` rows or fewer.
    """

    def __init__(self, *, sampling_strategy: Strategy = "auto", random_state: int | None = None,
                 k_neighbors: int = 5) -> None:
        super().__init__(sampling_strategy=sampling_strategy, random_state=random_state)
        self.k_neighbors = k_neighbors

    def _fit_resample(self, X, y, rng):
        from sklearn.neighbors import NearestNeighbors

        if X.dtype.kind not in "fiub":
            raise ValueError(f"SMOTE interpolates numeric features, got X of dtype {X.dtype}")
        new_x, new_y = [X.astype(float)], [y]
        for c, n_new in self.sampling_strategy_.items():
            rows = X[y == c].astype(float)
            if n_new == 0:
                continue
            if len(rows) <= self.k_neighbors:
                raise ValueError(f"SMOTE needs more rows of class {c!r} than k_neighbors={self.k_neighbors}, "
                                 f"got {len(rows)} (class counts {_counts(y)}); use k_neighbors={len(rows) - 1} "
                                 "or fewer, or RandomOverSampler")
            nn = NearestNeighbors(n_neighbors=self.k_neighbors + 1).fit(rows)
            neighbours = nn.kneighbors(rows, return_distance=False)[:, 1:]  # (rows, k), itself excluded
            base = rng.integers(0, len(rows), size=n_new)
            other = neighbours[base, rng.integers(0, self.k_neighbors, size=n_new)]
            gap = rng.random((n_new, 1))
            new_x.append(rows[base] + gap * (rows[other] - rows[base]))
            new_y.append(np.full(n_new, c, dtype=y.dtype))
        return np.concatenate(new_x), np.concatenate(new_y)


class NearMiss(_Sampler):
    """Under-sample the majority by distance to the minority (deterministic).

    Args:
        version: 1, 2 or 3 (see the module docstring).
        n_neighbors: minority neighbours averaged over.
        n_neighbors_ver3: majority neighbours of each minority row kept as candidates (version 3).
    """

    _kind = "under"

    def __init__(self, *, sampling_strategy: Strategy = "auto", version: int = 1, n_neighbors: int = 3,
                 n_neighbors_ver3: int = 3) -> None:
        super().__init__(sampling_strategy=sampling_strategy, random_state=None)
        self.version, self.n_neighbors, self.n_neighbors_ver3 = version, n_neighbors, n_neighbors_ver3

    def _fit_resample(self, X, y, rng):
        from sklearn.neighbors import NearestNeighbors

        if self.version not in (1, 2, 3):
            raise ValueError(f"NearMiss version must be 1, 2 or 3, got {self.version!r}")
        counts = _counts(y)
        minority = min(counts, key=counts.get)
        if counts[minority] < self.n_neighbors:
            raise ValueError(f"NearMiss needs at least n_neighbors={self.n_neighbors} minority rows, got "
                             f"{counts[minority]} (class counts {counts})")
        minority_rows = X[y == minority]
        nn = NearestNeighbors(n_neighbors=self.n_neighbors).fit(minority_rows)
        keep = []
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            if c not in self.sampling_strategy_:
                keep.append(rows)
                continue
            wanted = self.sampling_strategy_[c]
            if self.version == 3:
                ver3 = NearestNeighbors(n_neighbors=min(self.n_neighbors_ver3, len(rows))).fit(X[rows])
                candidates = np.unique(ver3.kneighbors(minority_rows, return_distance=False))
                dist, _ = nn.kneighbors(X[rows[candidates]])
                order = np.argsort(-dist.sum(1), kind="stable")  # farthest first
                if len(candidates) < wanted:
                    warnings.warn(f"NearMiss-3 found {len(candidates)} candidate rows of class {c!r} for the "
                                  f"{wanted} wanted; all candidates are kept (raise n_neighbors_ver3)", stacklevel=3)
                keep.append(rows[candidates[order[:wanted]]])
                continue
            k = self.n_neighbors if self.version == 1 else len(minority_rows)
            dist, _ = nn.kneighbors(X[rows], n_neighbors=k)  # sorted nearest first
            score = dist[:, -self.n_neighbors:].sum(1)  # version 2: the k farthest minority rows
            keep.append(rows[np.argsort(score, kind="stable")[:wanted]])
        self.sample_indices_ = np.concatenate(keep)
        return X[self.sample_indices_], y[self.sample_indices_]


SAMPLERS: Registry = Registry("sampler")
SAMPLERS.add("random_over", RandomOverSampler, "duplicate random rows of the smaller classes (shrinkage: jitter)")
SAMPLERS.add("random_under", RandomUnderSampler, "drop random rows of the larger classes")
SAMPLERS.add("smote", SMOTE, "new rows between a row and one of its k_neighbors nearest same-class rows")
SAMPLERS.add("nearmiss", NearMiss, "keep the rows of the larger classes nearest the minority (version 1, 2, 3)")


def resample_split(x: Any, y: Any, method: str, seed: int = 0, **options: Any) -> tuple[Any, Any]:
    """Resample a training split's tensors ``x`` ``(rows, *shape)`` and ``y`` with the sampler named ``method``.

    Raises:
        ValueError: unknown method or option (a ``TrainwellError``), or a request the data cannot meet.
    """
    import torch

    if "random_state" in SAMPLERS.options(method):  # the random samplers draw from the run's seed
        options = {"random_state": seed, **options}
    sampler = SAMPLERS.build(method, **options)
    shape = tuple(x.shape[1:])
    xr, yr = sampler.fit_resample(x.reshape(len(x), -1).cpu().numpy(), y.cpu().numpy())
    return (torch.as_tensor(xr, dtype=x.dtype).reshape(len(xr), *shape), torch.as_tensor(yr, dtype=y.dtype))
