"""Class imbalance: resampling the training rows (seed 003, spec J), the imbalanced-learn way.

Every sampler follows imbalanced-learn's API on scikit-learn's ``BaseEstimator``
(:mod:`trainwell.data.sampling` has the shared protocol): the constructor only
stores its keyword arguments (``get_params``, ``set_params``, ``clone`` work, and
so does a step of imbalanced-learn's ``Pipeline``); ``fit_resample(X, y)``
returns the resampled rows in the containers given (arrays, lists, SciPy sparse,
pandas); what it learned ends in ``_`` (``sampling_strategy_``, ``sample_indices_``
for the samplers that keep original rows, ``n_features_in_``, ``feature_names_in_``).
``random_state`` is scikit-learn's: ``None``, an int or a ``numpy.random.RandomState``.
``sampling_strategy`` means what it means there:

* over-samplers: ``"auto"`` (= ``"not majority"``), ``"minority"``,
  ``"not minority"``, ``"not majority"``, ``"all"``; a float (two classes only) is the wanted
  ratio minority / majority after resampling; a dict is the wanted count per class;
  a callable ``f(y)`` returns such a dict;
* under-samplers: ``"auto"`` (= ``"not minority"``), ``"majority"``,
  ``"not minority"``, ``"not majority"``, ``"all"``; a float is the same ratio; a dict the
  count kept per class; a callable returns such a dict.

NaN and infinity in numeric features are refused with a ``ValueError`` by every
sampler (imbalanced-learn's random samplers pass them through): drop or impute those rows first.

==================== ==============================================================
``RandomOverSampler`` duplicate random minority rows (with ``shrinkage``: plus
                      Gaussian jitter, a smoothed bootstrap)
``RandomUnderSampler`` drop random majority rows (``replacement=True``: draw with replacement)
``SMOTE``             new minority rows on the segment from a row to one of its
                      ``k_neighbors`` nearest same-class neighbours (Chawla 2002)
``NearMiss``          keep the majority rows closest to the minority (version 1:
                      smallest mean distance to the k nearest minority rows; 2: to
                      the k farthest; 3: among each minority row's nearest majority
                      rows, those farthest from the minority) (Mani & Zhang 2003)
==================== ==============================================================
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.utils import check_random_state

from trainwell.data.sampling import (NEIGHBORS, BaseSampler, Strategy, class_counts, over_strategy,
                                     sampling_targets, under_strategy)
from trainwell.registry import Registry

__all__ = ["SAMPLERS", "SMOTE", "NearMiss", "RandomOverSampler", "RandomUnderSampler", "resample_split",
           "sampling_targets"]


def _neighbours(value: Any, extra: int = 0, n_jobs: int | None = None) -> Any:
    """A fresh nearest-neighbours estimator: ``NearestNeighbors(value + extra)`` or a clone of the object given."""
    from sklearn.neighbors import NearestNeighbors

    if isinstance(value, numbers.Integral):
        return NearestNeighbors(n_neighbors=int(value) + extra, n_jobs=n_jobs)
    nn = clone(value)
    if n_jobs is not None and "n_jobs" in nn.get_params():
        nn.set_params(n_jobs=n_jobs)
    return nn


def _std(rows: Any) -> np.ndarray:
    if sparse.issparse(rows):
        mean = np.asarray(rows.mean(axis=0)).ravel()
        return np.sqrt(np.maximum(np.asarray(rows.multiply(rows).mean(axis=0)).ravel() - mean ** 2, 0))
    return rows.std(axis=0)


class RandomOverSampler(BaseSampler):
    """Duplicate random rows of the classes to grow (a bootstrap), optionally jittered.

    Args:
        sampling_strategy: see the module docstring.
        random_state: ``None``, an int or a ``numpy.random.RandomState``.
        shrinkage: ``None`` (exact copies), a factor >= 0 or a dict of factors per class to grow:
            Gaussian jitter added to each copy, per feature
            ``shrinkage * std_class * (4 / ((d + 2) n_class))^(1 / (d + 4))``
            (a smoothed bootstrap with Silverman's bandwidth for the class's ``n_class`` rows).
            A factor of 0 gives exact copies, the same rows as ``None``.

    Attributes:
        sampling_strategy_: rows generated per class.
        sample_indices_: the original row of every output row.
        shrinkage_: the factor per class grown (``None`` without jitter).
        n_features_in_, feature_names_in_: what ``fit`` saw (names for DataFrames with string columns).

    Raises:
        ValueError: (in ``fit_resample``) NaN or infinity in X; non-numeric X with ``shrinkage``; a negative
            factor or a class to grow without one; see also ``BaseSampler.fit_resample``.
    """

    _parameter_constraints = {"sampling_strategy": over_strategy(), "random_state": ["random_state"],
                              "shrinkage": [numbers.Real, Mapping, None]}
    _sample_indices = True

    def __init__(self, *, sampling_strategy: Strategy = "auto", random_state: Any = None,
                 shrinkage: float | Mapping[Any, float] | None = None) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.shrinkage = shrinkage

    def _check_shrinkage(self) -> dict[Any, float] | None:
        if self.shrinkage is None:
            return None
        factors = dict(self.shrinkage) if isinstance(self.shrinkage, Mapping) else \
            {c: self.shrinkage for c in self.sampling_strategy_}
        missing = [c for c in self.sampling_strategy_ if c not in factors]
        if missing:
            raise ValueError(f"`shrinkage` should contain a shrinkage factor for each class to grow; "
                             f"missing classes {missing}")
        for c, factor in factors.items():
            if not isinstance(factor, numbers.Real) or factor < 0:
                raise ValueError(f"The shrinkage factor needs to be >= 0, got {factor!r} for class {c!r}")
        return factors

    def _resample(self, X, y):
        rng = check_random_state(self.random_state)
        self.shrinkage_ = self._check_shrinkage()
        if self.shrinkage_ is not None and X.dtype.kind not in "fiub":
            raise ValueError(f"When shrinkage is not None, X needs to contain only numerical features (the copies "
                             f"are jittered), got X of dtype {X.dtype}")
        picks = []
        jittered = []
        for c, n_new in self.sampling_strategy_.items():
            rows = np.flatnonzero(y == c)
            pick = rows[rng.randint(0, len(rows), size=n_new)]
            picks.append(pick)
            if self.shrinkage_ is None:
                continue
            copies = X[pick]
            factor = self.shrinkage_[c]
            if factor and n_new:
                d = X.shape[1]
                scale = factor * (4 / ((d + 2) * len(rows))) ** (1 / (d + 4)) * _std(X[rows])
                noise = rng.standard_normal((n_new, d)) * scale
                copies = (copies.toarray() if sparse.issparse(copies) else copies) + noise
                dtype = X.dtype if X.dtype.kind == "f" else np.float64
                copies = sparse.csr_matrix(copies.astype(dtype)) if sparse.issparse(X) else copies.astype(dtype)
            jittered.append(copies)
        origin = np.concatenate([np.arange(len(y)), *picks]).astype(np.intp)
        if self.shrinkage_ is None:
            return origin, None, None
        self.sample_indices_ = origin
        new = sparse.vstack(jittered, format="csr") if sparse.issparse(X) else np.concatenate(jittered)
        return np.arange(len(y)), new, y[origin[len(y):]]


class RandomUnderSampler(BaseSampler):
    """Keep a random subset of the classes to shrink.

    Args:
        sampling_strategy: see the module docstring.
        random_state: ``None``, an int or a ``numpy.random.RandomState``.
        replacement: draw the rows kept with replacement (a row may appear twice).

    Attributes:
        sampling_strategy_: rows kept per class shrunk.
        sample_indices_: the original row of every output row (without replacement, in their original order).
        n_features_in_, feature_names_in_: what ``fit`` saw.

    Raises:
        ValueError: (in ``fit_resample``) NaN or infinity in X; see also ``BaseSampler.fit_resample``.
    """

    _sampling_type = "under-sampling"
    _parameter_constraints = {"sampling_strategy": under_strategy(), "random_state": ["random_state"],
                              "replacement": ["boolean"]}
    _sample_indices = True

    def __init__(self, *, sampling_strategy: Strategy = "auto", random_state: Any = None,
                 replacement: bool = False) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.replacement = replacement

    def _resample(self, X, y):
        rng = check_random_state(self.random_state)
        keep = []
        for c in np.unique(y).tolist():
            rows = np.flatnonzero(y == c)
            if c in self.sampling_strategy_:
                chosen = rng.choice(len(rows), size=self.sampling_strategy_[c], replace=self.replacement)
                rows = rows[chosen if self.replacement else np.sort(chosen)]
            keep.append(rows)
        return np.concatenate(keep).astype(np.intp), None, None


class SMOTE(BaseSampler):
    """Synthetic minority over-sampling: ``x + u (x_nn - x)``, ``u ~ U(0, 1)``, ``x_nn`` one of the
    ``k_neighbors`` nearest rows of the same class (Chawla et al. 2002).

    Args:
        sampling_strategy: see the module docstring.
        random_state: ``None``, an int or a ``numpy.random.RandomState``.
        k_neighbors: neighbours to interpolate towards, or a nearest-neighbours object
            (``kneighbors``, ``kneighbors_graph``) whose ``n_neighbors`` counts the row itself.

    Attributes:
        sampling_strategy_: rows generated per class.
        nn_k_: the nearest-neighbours estimator (of the last class grown).
        n_features_in_, feature_names_in_: what ``fit`` saw.

    Floating X keeps its dtype (float32 stays float32); integer X gives float64 rows. The
    original rows come first, unchanged, then the new ones.

    Raises:
        ValueError: (in ``fit_resample``) non-numeric X; NaN or infinity in X; a class to grow has
            ``k_neighbors`` rows or fewer; see also ``BaseSampler.fit_resample``.
    """

    _parameter_constraints = {"sampling_strategy": over_strategy(), "random_state": ["random_state"],
                              "k_neighbors": NEIGHBORS}
    _numeric = True

    def __init__(self, *, sampling_strategy: Strategy = "auto", random_state: Any = None,
                 k_neighbors: Any = 5) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.k_neighbors = k_neighbors

    def _resample(self, X, y):
        rng = check_random_state(self.random_state)
        dtype = X.dtype if X.dtype.kind == "f" else np.float64
        self.nn_k_ = _neighbours(self.k_neighbors, extra=1)
        k = self.nn_k_.n_neighbors - 1
        new_x, new_y = [], []
        for c, n_new in self.sampling_strategy_.items():
            if n_new == 0:
                continue
            rows = X[np.flatnonzero(y == c)]
            if rows.shape[0] <= k:
                raise ValueError(f"SMOTE needs more rows of class {c!r} than k_neighbors={k}, got {rows.shape[0]} "
                                 f"(class counts {class_counts(y)}); use k_neighbors={rows.shape[0] - 1} "
                                 "or fewer, or RandomOverSampler")
            neighbours = self.nn_k_.fit(rows).kneighbors(rows, return_distance=False)[:, 1:]  # itself excluded
            pair = rng.randint(0, neighbours.size, size=n_new)  # a (row, neighbour) pair, uniformly
            gap = rng.uniform(size=n_new)[:, None]
            base, other = pair // k, neighbours[pair // k, pair % k]
            if sparse.issparse(rows):
                new = rows[base] + rows[other].multiply(gap) - rows[base].multiply(gap)
                new_x.append(sparse.csr_matrix(new, dtype=dtype))
            else:
                new_x.append((rows[base] + gap * (rows[other] - rows[base])).astype(dtype))
            new_y.append(np.full(n_new, c, dtype=y.dtype))
        if not new_x:
            return np.arange(len(y)), None, None
        new = sparse.vstack(new_x, format="csr") if sparse.issparse(X) else np.concatenate(new_x)
        return np.arange(len(y)), new, np.concatenate(new_y)

    def _restore_x(self, X, X_, rows, X_new):
        if X_new is not None and not sparse.issparse(X_) and X_.dtype.kind != "f":
            X_ = X_.astype(np.float64)  # integer features: the new rows are not whole numbers
        return super()._restore_x(X, X_, rows, X_new)


class NearMiss(BaseSampler):
    """Under-sample by distance to the minority (deterministic; Mani & Zhang 2003).

    Args:
        sampling_strategy: see the module docstring.
        version: 1, 2 or 3 (see the module docstring).
        n_neighbors: minority neighbours averaged over, or a nearest-neighbours object.
        n_neighbors_ver3: majority neighbours of each minority row kept as candidates (version 3),
            or a nearest-neighbours object.
        n_jobs: parallel jobs of the neighbour searches (``None``: one).

    Attributes:
        sampling_strategy_: rows kept per class shrunk.
        sample_indices_: the original row of every output row.
        nn_, nn_ver3_: the nearest-neighbours estimators (``nn_ver3_``: version 3 only).
        n_features_in_, feature_names_in_: what ``fit`` saw.

    Raises:
        ValueError: (in ``fit_resample``) non-numeric X; NaN or infinity in X; fewer minority rows than
            ``n_neighbors``; see also ``BaseSampler.fit_resample``. Version 3 warns when it finds fewer
            candidates than the rows asked for and keeps them all.
    """

    _sampling_type = "under-sampling"
    _parameter_constraints = {"sampling_strategy": under_strategy(),
                              "version": [numbers.Integral], "n_neighbors": NEIGHBORS,
                              "n_neighbors_ver3": NEIGHBORS, "n_jobs": [numbers.Integral, None]}
    _numeric = True
    _sample_indices = True

    def __init__(self, *, sampling_strategy: Strategy = "auto", version: int = 1, n_neighbors: Any = 3,
                 n_neighbors_ver3: Any = 3, n_jobs: int | None = None) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.version = version
        self.n_neighbors = n_neighbors
        self.n_neighbors_ver3 = n_neighbors_ver3
        self.n_jobs = n_jobs

    def _resample(self, X, y):
        if self.version not in (1, 2, 3):
            raise ValueError(f"NearMiss version must be 1, 2 or 3, got {self.version!r}")
        counts = class_counts(y)
        minority = min(counts, key=counts.get)
        self.nn_ = _neighbours(self.n_neighbors, n_jobs=self.n_jobs)
        k = self.nn_.n_neighbors
        if counts[minority] < k:
            raise ValueError(f"NearMiss needs at least n_neighbors={k} minority rows, got "
                             f"{counts[minority]} (class counts {counts})")
        minority_rows = X[np.flatnonzero(y == minority)]
        self.nn_.fit(minority_rows)
        if self.version == 3:
            self.nn_ver3_ = _neighbours(self.n_neighbors_ver3, n_jobs=self.n_jobs)
        keep = []
        for c in np.unique(y).tolist():
            rows = np.flatnonzero(y == c)
            if c not in self.sampling_strategy_:
                keep.append(rows)
                continue
            wanted = self.sampling_strategy_[c]
            if self.version == 3:
                ver3 = self.nn_ver3_
                if isinstance(self.n_neighbors_ver3, numbers.Integral):
                    ver3.set_params(n_neighbors=min(int(self.n_neighbors_ver3), len(rows)))
                candidates = np.unique(ver3.fit(X[rows]).kneighbors(minority_rows, return_distance=False))
                dist, _ = self.nn_.kneighbors(X[rows[candidates]], n_neighbors=k)
                order = np.argsort(-dist.sum(1), kind="stable")  # farthest first
                if len(candidates) < wanted:
                    warnings.warn(f"NearMiss-3 found {len(candidates)} candidate rows of class {c!r} for the "
                                  f"{wanted} wanted; all candidates are kept (raise n_neighbors_ver3)", stacklevel=3)
                keep.append(rows[candidates[order[:wanted]]])
                continue
            n = k if self.version == 1 else minority_rows.shape[0]
            dist, _ = self.nn_.kneighbors(X[rows], n_neighbors=n)  # sorted nearest first
            score = dist[:, -k:].sum(1)  # version 2: the k farthest minority rows
            keep.append(rows[np.argsort(score, kind="stable")[:wanted]])
        return np.concatenate(keep).astype(np.intp), None, None


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
