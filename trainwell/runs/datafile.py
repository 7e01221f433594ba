"""A user's own data file: a ``.csv`` table or an ``.npz`` with arrays ``x`` and ``y``, read and checked.

The same reader serves ``trainwell train --data FILE`` (``data.path``),
``trainwell evaluate --data FILE`` and ``trainwell predict``:

* ``.csv`` - one row per sample, comma-separated numbers; a first row that is
  not all numbers is a header (column names). The label is the last column,
  or the column ``target`` names (a header name, or a column number counted
  from 0; negative numbers count from the end).
* ``.npz`` - arrays ``x`` (rows first: ``(rows, features)``, or ``(rows, h, w)``
  for images) and ``y`` (one integer class per row); read without pickle.

Labels are classes ``0..k-1``. A run records the file's sha256, and a file
that changed since is refused.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from trainwell.errors import TrainwellError

__all__ = ["FORMATS", "file_sha256", "read_features", "read_labelled", "rows_for"]

FORMATS = ".npz (arrays x, y) or .csv (header optional, label last or --target)"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """(header names or None, the table ``(rows, columns)`` as float64)."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # -sig: a spreadsheet's byte-order mark
        lines = [line for line in f if line.strip()]
    if not lines:
        raise TrainwellError(f"{path} is empty: a .csv needs one row per sample (numbers, comma-separated)")
    fields = [c.strip().strip('"').strip("'") for c in lines[0].rstrip("\r\n").split(",")]
    header = None if all(_is_number(c) for c in fields) else fields
    with warnings.catch_warnings():  # an empty body is reported below, in one line
        warnings.simplefilter("ignore")
        table = np.loadtxt(lines[0 if header is None else 1:], delimiter=",", ndmin=2, comments=None,
                           quotechar='"')
    if table.size == 0:
        raise TrainwellError(f"{path} has a header row but no data rows")
    if header is not None and len(header) != table.shape[1]:
        raise TrainwellError(f"{path}: its header has {len(header)} columns, its rows {table.shape[1]}")
    return header, table


def _column(path: Path, header: list[str] | None, width: int, target: str | int | None) -> int:
    """The index of the label column ``target`` names (None: the last)."""
    if target is None:
        return width - 1
    if isinstance(target, str) and header is not None and target in header:
        return header.index(target)
    if isinstance(target, str) and not target.lstrip("-").isdigit():
        if header is not None:
            raise TrainwellError(f"{path} has no column {target!r}; its columns: {', '.join(header)}")
        raise TrainwellError(f"{path} has no header row, so --target must be a column number "
                             f"(0..{width - 1}, or -1 for the last), got {target!r}")
    index = int(target)
    if not -width <= index < width:
        raise TrainwellError(f"--target {index}: {path} has {width} columns (0..{width - 1})")
    return index % width


def _read(path: Path, target: str | int | None, labelled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.is_file():
        raise TrainwellError(f"data file not found: {path}")
    try:
        if path.suffix == ".npz":
            if target is not None:
                raise TrainwellError(f"--target names a .csv column; {path} holds arrays x and y")
            with np.load(path, allow_pickle=False) as f:
                need = ("x", "y") if labelled else ("x",)
                if any(k not in f for k in need):
                    raise TrainwellError(f"{path} must hold arrays {' and '.join(map(repr, need))}, "
                                         f"has {sorted(f.files)}")
                x, y = f["x"], (f["y"] if labelled else None)
        elif path.suffix == ".csv":
            header, table = _read_csv(path)
            if not labelled and target is None:
                return table, None
            if table.shape[1] < 2:
                raise TrainwellError(f"{path} has one column; it needs features and a label")
            column = _column(path, header, table.shape[1], target)
            x, y = np.delete(table, column, axis=1), table[:, column]
        else:
            raise TrainwellError(f"a data file must be {FORMATS}, got {path}")
    except (OSError, ValueError, EOFError) as err:
        if isinstance(err, TrainwellError):
            raise
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TrainwellError(f"cannot read {path}: {first}") from None
    if not np.issubdtype(x.dtype, np.number) or x.ndim < 2 and len(x):
        raise TrainwellError(f"{path}: x must be numbers, one row per sample, got {x.dtype} of shape {x.shape}")
    if len(x) == 0:
        raise TrainwellError(f"{path} has no rows")
    if y is not None and len(y) != len(x):
        raise TrainwellError(f"{path} has {len(x)} rows of x but {len(y)} labels; they must match row for row")
    return x, y


def _finite(path: Path, x: np.ndarray) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        rows = np.unique(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[:, 0])
        raise TrainwellError(f"{path} has non-finite values in rows {rows[:10].tolist()}")


def read_labelled(path: str | Path, target: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and integer labels of a data file, checked.

    Args:
        path: a ``.csv`` or ``.npz`` file (see the module's docstring).
        target: the ``.csv`` label column: a header name or a number (None: the last column).

    Returns:
        ``(x, y)``: ``x`` of shape ``(rows, ...)``, ``y`` int64 ``(rows,)`` (``(rows, steps)`` for sequences).

    Raises:
        TrainwellError: a missing, unreadable, empty or inconsistent file, non-finite
            features, labels that are not classes; one line naming the problem.
    """
    path = Path(path)
    x, y = _read(path, target, labelled=True)
    _finite(path, x)
    if not np.issubdtype(y.dtype, np.number) or y.ndim not in (1, 2) \
            or not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or np.any(y < 0):
        raise TrainwellError(f"{path}: labels must be non-negative integers (classes 0..k-1), one per row")
    return x, y.astype(np.int64)


def read_features(path: str | Path, target: str | int | None = None) -> np.ndarray:
    """The features of a data file, for predictions: an ``.npz``'s ``x``, a ``.csv``'s columns without
    ``target`` (None: every column is a feature).

    Raises:
        TrainwellError: as :func:`read_labelled`.
    """
    path = Path(path)
    x, _ = _read(path, target, labelled=False)
    _finite(path, x)
    return x


def rows_for(x: np.ndarray | torch.Tensor, shape: tuple[int, ...], what: str = "data") -> torch.Tensor:
    """``x`` as rows of ``shape`` (float32; int64 for token sequences is the caller's cast).

    Flat rows (a CSV's) with as many values as ``shape`` holds are reshaped to it.

    Raises:
        TrainwellError: rows of another shape, naming the expected one.
    """
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.dim() == 2 and len(shape) > 1 and x.shape[1] == math.prod(shape):
        x = x.reshape(len(x), *shape)
    if x.dim() < 1 or tuple(x.shape[1:]) != tuple(shape):
        got = tuple(x.shape[1:]) if x.dim() >= 1 else "a scalar"
        raise TrainwellError(f"{what} rows have shape {got}, the model expects {tuple(shape)}"
                             f"{f' (or {math.prod(shape)} values per flat row)' if len(shape) > 1 else ''}")
    return x
