"""The one error type that means "the user asked for something invalid".

Every such error is a ``ValueError`` (the convention of torch and scikit-learn),
so library callers can catch it as usual, and the CLI prints its message as one
line with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["TrainwellError", "closest"]


class TrainwellError(ValueError):
    """Invalid user input: a config, a name, a file or data that cannot be used."""


def closest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` of ``candidates`` that look most like ``word``."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)
