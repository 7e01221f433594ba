"""Generated sequence tasks for encoder-decoder models (seed 001's sequence models).

Each task maps a source sequence of tokens to a target sequence:

============ ===================================================================
``copy``      the source itself
``reverse``   the source backwards (the first output needs the last input)
``sort``      the source's tokens in increasing order
``addition``  ``a + b`` for two ``length``-digit numbers in base ``vocab``;
              source: the digits of a, a ``+`` token (= ``vocab``), the digits
              of b; target: the ``length + 1`` digits of the sum
============ ===================================================================

Tokens are uniform over ``[0, vocab)``, drawn from a generator seeded by
``seed`` alone. Scored by per-token and exact-sequence accuracy.

:func:`make_adding_problem` is a regression task for recurrent models
(Hochreiter & Schmidhuber 1997): a long dependency that plain RNNs fail on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_adding_problem", "make_sequence_task"]

TASKS = ("copy", "reverse", "sort", "addition")


def make_sequence_task(task: str, n_samples: int, length: int = 8, vocab: int = 10, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_samples`` (source, target) pairs of ``task``.

    Returns:
        ``source`` int64 ``(n, length)`` (addition: ``(n, 2 length + 1)``) and
        ``target`` int64 ``(n, length)`` (addition: ``(n, length + 1)``).

    Raises:
        ValueError: unknown task, ``length < 1`` or ``vocab < 2``.

    Example:
        >>> x, y = make_sequence_task("reverse", 2, length=4, seed=1)
        >>> bool((y == x[:, ::-1]).all())
        True
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    if not isinstance(vocab, int) or vocab < 2:
        raise ValueError(f"vocab must be an integer >= 2, got {vocab!r}")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, size=(n_samples, length), dtype=np.int64)
    if task == "copy":
        return x, x.copy()
    if task == "reverse":
        return x, x[:, ::-1].copy()
    if task == "sort":
        return x, np.sort(x, axis=1)
    b = rng.integers(0, vocab, size=(n_samples, length), dtype=np.int64)
    powers = vocab ** np.arange(length - 1, -1, -1, dtype=np.int64)  # most significant digit first
    total = (x * powers).sum(1) + (b * powers).sum(1)  # (n,)
    digits = (total[:, None] // (vocab ** np.arange(length, -1, -1, dtype=np.int64))) % vocab  # (n, length + 1)
    plus = np.full((n_samples, 1), vocab, dtype=np.int64)
    return np.concatenate([x, plus, b], axis=1), digits


def make_adding_problem(n_samples: int, length: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem: ``length`` steps of (value, marker); the target is the sum of the two marked values.

    Values are uniform on [0, 1]; one marker lies in the first half of the
    sequence and one in the second, so the answer depends on a step at least
    ``length / 2`` steps back. Predicting the mean (1) scores an MSE of
    ``Var(u1 + u2) = 1/6``.

    Returns:
        ``x`` float32 ``(n, length, 2)`` (channel 0 the values, 1 the markers) and ``y`` float32 ``(n,)``.

    Raises:
        ValueError: ``length < 2``.

    Example:
        >>> x, y = make_adding_problem(3, length=6, seed=1)
        >>> bool(np.allclose((x[..., 0] * x[..., 1]).sum(1), y))
        True
    """
    if not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2, got {length!r}")
    rng = np.random.default_rng(seed)
    values = rng.random((n_samples, length))
    half = length // 2
    first = rng.integers(0, half, size=n_samples)
    second = rng.integers(half, length, size=n_samples)
    markers = np.zeros((n_samples, length))
    rows = np.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1).astype(np.float32), y.astype(np.float32)
