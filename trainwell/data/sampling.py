"""The protocol trainwell's samplers share: imbalanced-learn's sampler API on scikit-learn's ``BaseEstimator``.

A sampler's constructor only stores its keyword arguments (so ``get_params``,
``set_params`` and ``sklearn.base.clone`` work, and so do ``GridSearchCV`` and
``cross_val_score`` on an imbalanced-learn ``Pipeline``). ``fit(X, y)`` checks
the inputs and sets ``sampling_strategy_``; ``fit_resample(X, y)`` returns the
resampled rows in the containers it was given: NumPy arrays, lists, SciPy
sparse matrices (CSR/CSC), pandas DataFrames and Series (pandas is optional and
imported only when a pandas object is passed). ``y`` may be integers, strings,
whole-number floats, a column vector or a one-hot matrix (returned one-hot).

NaN and infinity in numeric features are refused with a ``ValueError``
(imbalanced-learn passes them through): drop or impute those rows first.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, OneToOneFeatureMixin
from sklearn.utils import check_array
from sklearn.utils.multiclass import type_of_target

# scikit-learn's parameter validation, as scikit-learn's own and imbalanced-learn's estimators use it
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_parameter_constraints

__all__ = ["BaseSampler", "NEIGHBORS", "over_strategy", "sampling_targets", "under_strategy"]

Strategy = Any  # str | float | Mapping[label, int] | Callable[[np.ndarray], Mapping[label, int]]
_KINDS = {"over": "over-sampling", "over-sampling": "over-sampling",
          "under": "under-sampling", "under-sampling": "under-sampling"}
_OVER_NAMES = ("auto", "minority", "not minority", "not majority", "all")
_UNDER_NAMES = ("auto", "majority", "not minority", "not majority", "all")
# no keyword check_array spells the same in every scikit-learn >= 1.3 (renamed in 1.6)
_FINITE = "ensure_all_finite" if "ensure_all_finite" in inspect.signature(check_array).parameters \
    else "force_all_finite"


def over_strategy() -> list[Any]:
    """The ``_parameter_constraints`` entry of an over-sampler's ``sampling_strategy``."""
    return [Interval(numbers.Real, 0, 1, closed="right"), StrOptions(set(_OVER_NAMES)), Mapping, callable]


def under_strategy() -> list[Any]:
    """The ``_parameter_constraints`` entry of an under-sampler's ``sampling_strategy``."""
    return [Interval(numbers.Real, 0, 1, closed="right"), StrOptions(set(_UNDER_NAMES)), Mapping, callable]


NEIGHBORS = [Interval(numbers.Integral, 1, None, closed="left"), HasMethods(["kneighbors", "kneighbors_graph"])]


def class_counts(y: np.ndarray) -> dict[Any, int]:
    """Rows per class, classes sorted."""
    return dict(sorted(Counter(y.tolist()).items()))


def sampling_targets(y: Any, strategy: Strategy, kind: str) -> dict[Any, int]:
    """imbalanced-learn's ``sampling_strategy_``: per class, rows to generate (over-sampling) or to keep (under).

    Args:
        y: class labels, one per row.
        strategy: a name (``"auto"``, ``"minority"``, ``"majority"``, ``"not minority"``,
            ``"not majority"``, ``"all"``), a ratio minority / majority in (0, 1] (two classes),
            a dict of counts per class, or a callable ``f(y) -> dict``.
        kind: ``"over-sampling"`` or ``"under-sampling"`` (also ``"over"``, ``"under"``).

    Raises:
        ValueError: an unknown kind, fewer than two classes, a negative or impossible count,
            a class not in ``y``, or a strategy of the wrong kind; the message names the class counts.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'over-sampling' or 'under-sampling', got {kind!r}")
    over = _KINDS[kind] == "over-sampling"
    y = np.asarray(y)
    counts = class_counts(y)
    if len(counts) < 2:
        raise ValueError(f"y has {len(counts)} class {counts}; resampling needs at least two classes")
    n_min, n_maj = min(counts.values()), max(counts.values())
    minority, majority = min(counts, key=counts.get), max(counts, key=counts.get)
    if callable(strategy):
        wanted = strategy(y)
        if not isinstance(wanted, Mapping):
            raise ValueError(f"a callable sampling_strategy must return a dict of counts per class, "
                             f"got {type(wanted).__name__}")
        strategy = wanted
    if isinstance(strategy, str):
        names = _OVER_NAMES if over else _UNDER_NAMES
        if strategy not in names:
            raise ValueError(f"sampling_strategy {strategy!r} is not one of {', '.join(names)} "
                             f"({'over' if over else 'under'}-sampling)")
        named = {"auto": "not majority" if over else "not minority"}.get(strategy, strategy)
        chosen = {"minority": [minority], "majority": [majority],
                  "not minority": [c for c in counts if c != minority],
                  "not majority": [c for c in counts if c != majority], "all": list(counts)}[named]
        return {c: (n_maj - counts[c]) if over else n_min for c in chosen}
    if isinstance(strategy, numbers.Real) and not isinstance(strategy, bool):
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
    if isinstance(strategy, Mapping):
        unknown = [c for c in strategy if c not in counts]
        if unknown:
            raise ValueError(f"sampling_strategy names classes not in y: {unknown} (class counts {counts})")
        out = {}
        for c, wanted in strategy.items():
            if not isinstance(wanted, numbers.Integral) or isinstance(wanted, bool):
                raise ValueError(f"sampling_strategy wants {wanted!r} rows of class {c!r}; a count must be "
                                 "a whole number")
            if wanted < 0:
                raise ValueError(f"sampling_strategy wants {wanted} rows of class {c!r}; a count cannot be "
                                 f"negative (class counts {counts})")
            if over and wanted < counts[c]:
                raise ValueError(f"sampling_strategy wants {wanted} rows of class {c!r}, which has {counts[c]} "
                                 f"(class counts {counts}); over-sampling cannot remove rows")
            if not over and wanted > counts[c]:
                raise ValueError(f"sampling_strategy wants {wanted} rows of class {c!r}, which has only "
                                 f"{counts[c]} (class counts {counts}); under-sampling cannot add rows")
            out[c] = int(wanted - counts[c] if over else wanted)
        return out
    raise ValueError(f"sampling_strategy must be a name, a float, a dict or a callable, "
                     f"got {type(strategy).__name__}")


def _is_pandas(obj: Any, kind: str) -> bool:
    return type(obj).__name__ == kind and type(obj).__module__.startswith("pandas")


def _float_like(dtype: Any) -> bool:
    try:
        return np.issubdtype(getattr(dtype, "subtype", dtype), np.floating)
    except TypeError:
        return False


def check_finite(X: Any) -> None:
    """Refuse NaN and infinity in numeric features (a ``ValueError``)."""
    values = X.data if sparse.issparse(X) else X
    if values.dtype.kind in "fc":
        bad = not np.isfinite(values).all()
    elif values.dtype.kind == "O":
        bad = any(isinstance(v, (float, np.floating)) and not math.isfinite(v) for v in values.ravel())
    else:
        bad = False
    if bad:
        raise ValueError("X holds NaN or infinite values; drop or fix those rows before resampling")


def check_labels(y: Any, n_rows: int | None = None) -> tuple[np.ndarray, bool]:
    """``y`` as one label per row, and whether it came one-hot encoded.

    Raises:
        ValueError: ``y`` missing, continuous, multilabel or multioutput, or not one label per row of X.
    """
    if y is None:
        raise ValueError("this sampler requires y to be passed, but the target y is None")
    if sparse.issparse(y):
        raise ValueError("y must be a dense array of class labels, got a sparse matrix")
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    target = type_of_target(y)
    one_hot = False
    if target == "multilabel-indicator":
        if np.any(y.sum(axis=1) > 1):
            raise ValueError("y has several labels in a row (multilabel); samplers need one class per row, "
                             "or a one-hot matrix")
        y, one_hot = y.argmax(axis=1), True
    elif target in ("binary", "multiclass"):
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    elif target.startswith("continuous") and not target.endswith("multioutput"):
        raise ValueError(f"y must hold class labels (integers, strings or whole-number floats), got continuous "
                         f"{y.dtype} values; resampling needs classes, not continuous targets")
    elif target == "unknown":
        raise ValueError(f"Unknown label type: y of dtype {y.dtype} and shape {y.shape}; y must hold class labels "
                         "(integers, strings or whole-number floats)")
    else:
        raise ValueError(f"y must be one class label per row (1-D), got {target} targets of shape {y.shape}; "
                         "multilabel and multioutput targets are not supported")
    if y.ndim != 1:
        raise ValueError(f"y must be one class label per row (1-D), got shape {y.shape}")
    if n_rows is not None and len(y) != n_rows:
        raise ValueError(f"X and y must have one label per row, got {n_rows} rows and {len(y)} labels")
    return y, one_hot


try:  # scikit-learn >= 1.6: tags are dataclasses; a sampler's add imbalanced-learn's two
    from sklearn.utils import InputTags, Tags

    @dataclass(slots=True)
    class SamplerInputTags(InputTags):
        """scikit-learn's input tags plus imbalanced-learn's ``dataframe``."""

        dataframe: bool = True

    @dataclass(slots=True)
    class SamplerTags:
        """imbalanced-learn's sampler tags: whether ``sample_indices_`` is set."""

        sample_indices: bool = False

    @dataclass(slots=True)
    class SamplerEstimatorTags(Tags):
        """scikit-learn's tags plus imbalanced-learn's ``sampler_tags``."""

        sampler_tags: SamplerTags | None = None
except ImportError:  # pragma: no cover - older scikit-learn reads _more_tags
    Tags = None


class BaseSampler(OneToOneFeatureMixin, BaseEstimator):
    """Shared by trainwell's samplers: validation, the strategy, the containers in and out.

    Subclasses set ``_sampling_type``, ``_parameter_constraints`` and implement
    ``_resample(X, y) -> (rows, X_new, y_new)``: the original rows kept, in output order,
    then the new rows (or ``None``).
    """

    _estimator_type = "sampler"
    _sampling_type = "over-sampling"
    _parameter_constraints: dict = {}
    _numeric = False         # X must be numbers (SMOTE, NearMiss)
    _sample_indices = False  # sets sample_indices_

    def __init__(self, *, sampling_strategy: Strategy = "auto") -> None:
        self.sampling_strategy = sampling_strategy

    # -- the protocol ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> BaseSampler:
        """Check ``X`` and ``y`` and set ``sampling_strategy_`` (``fit_resample`` does this too).

        Returns:
            The sampler itself.

        Raises:
            ValueError: see :meth:`fit_resample`.
        """
        self._check_params()
        X_, y_, _ = self._check_inputs(X, y)
        self.sampling_strategy_ = sampling_targets(y_, self.sampling_strategy, self._sampling_type)
        return self

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Resample ``X`` ``(rows, features)`` and ``y`` ``(rows,)``; return them in the containers given.

        Raises:
            ValueError: an invalid parameter, NaN or infinity in X, y not class labels, one class only,
                or a strategy the data cannot meet (the message names the class counts).
        """
        self._check_params()
        X_, y_, one_hot = self._check_inputs(X, y)
        self.sampling_strategy_ = sampling_targets(y_, self.sampling_strategy, self._sampling_type)
        rows, X_new, y_new = self._resample(X_, y_)
        if self._sample_indices and X_new is None:  # new rows: the sampler records where they came from
            self.sample_indices_ = rows
        y_res = y_[rows] if y_new is None else np.concatenate([y_[rows], y_new.astype(y_.dtype)])
        if one_hot:  # back to one-hot, as wide as it came (imbalanced-learn: one column for two classes)
            width = np.shape(y)[1]
            y_res = (y_res[:, None] == np.arange(width)).astype(np.asarray(y).dtype)
        return self._restore_x(X, X_, rows, X_new), self._restore_y(X, y, y_res)

    def _resample(self, X: Any, y: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray | None]:
        raise NotImplementedError

    # -- checks -------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)

    def _check_inputs(self, X: Any, y: Any) -> tuple[Any, np.ndarray, bool]:
        """X as an array or CSR/CSC matrix, y as one label per row; sets ``n_features_in_``, ``feature_names_in_``."""
        names = None
        if _is_pandas(X, "DataFrame"):
            columns = list(X.columns)
            names = np.asarray(columns, dtype=object) if all(isinstance(c, str) for c in columns) else None
        kwargs = {"accept_sparse": ["csr", "csc"], "dtype": "numeric" if self._numeric else None, _FINITE: False}
        try:
            X_ = check_array(X, **kwargs)
        except TypeError:  # a DataFrame of columns NumPy cannot promote (dates and numbers): rows of objects
            if self._numeric or not _is_pandas(X, "DataFrame"):
                raise
            X_ = check_array(X.to_numpy(dtype=object), **kwargs)
        check_finite(X_)
        y_, one_hot = check_labels(y, X_.shape[0])
        self.n_features_in_ = X_.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X_, y_, one_hot

    # -- containers out ----------------------------------------------------------------------------------
    def _restore_x(self, X: Any, X_: Any, rows: np.ndarray, X_new: Any) -> Any:
        if _is_pandas(X, "DataFrame"):
            import pandas as pd

            kept = X.iloc[rows]
            if X_new is None:
                return kept.reset_index(drop=True)
            dense = X_new.toarray() if sparse.issparse(X_new) else np.asarray(X_new)
            new = pd.DataFrame(dense, columns=X.columns)
            new = new.astype({c: t for c, t in X.dtypes.items() if _float_like(t)})
            return pd.concat([kept, new], ignore_index=True)
        out = X_[rows]
        if X_new is not None:
            out = sparse.vstack([out, X_new], format=X_.format) if sparse.issparse(X_) else \
                np.concatenate([out, X_new.astype(out.dtype) if out.dtype.kind == "f" else X_new])
        return out.tolist() if isinstance(X, list) else out

    @staticmethod
    def _restore_y(X: Any, y: Any, y_res: np.ndarray) -> Any:
        if isinstance(y, list):
            return y_res.tolist()
        if _is_pandas(y, "Series") or _is_pandas(y, "DataFrame"):
            import pandas as pd

            index = pd.RangeIndex(len(y_res))
            if _is_pandas(y, "Series"):
                return pd.Series(y_res, dtype=y.dtype, name=y.name, index=index)
            values = y_res.reshape(len(y_res), -1)
            return pd.DataFrame(values, columns=y.columns, index=index).astype(y.dtypes.to_dict())
        return y_res

    # -- tags ---------------------------------------------------------------------------------------------
    def __sklearn_tags__(self):  # noqa: D105
        base = super().__sklearn_tags__()
        if Tags is None:  # pragma: no cover
            return base
        tags = SamplerEstimatorTags(**{f.name: getattr(base, f.name) for f in fields(Tags)},
                                    sampler_tags=SamplerTags(sample_indices=self._sample_indices))
        tags.estimator_type = "sampler"
        tags.target_tags.required = True
        tags.input_tags = SamplerInputTags(**{f.name: getattr(base.input_tags, f.name) for f in fields(InputTags)})
        tags.input_tags.sparse = True
        tags.input_tags.string = not self._numeric
        tags.input_tags.allow_nan = False
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        kinds = ["2darray", "sparse", "dataframe"] + ([] if self._numeric else ["string"])
        return {"X_types": kinds, "sample_indices": self._sample_indices, "allow_nan": False, "requires_y": True}
