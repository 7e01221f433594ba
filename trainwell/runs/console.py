"""What a run says on the terminal while it works (findings, repairs), on standard error."""

from __future__ import annotations

__all__ = ["say"]


def say(show: bool, text: str, one_line: bool = False) -> None:
    """Print ``text`` to standard error when ``show`` (the run's progress setting); ``one_line``: never wrapped."""
    if show:
        from rich.console import Console  # rich's import costs ~50 ms: only when something is said

        Console(stderr=True, highlight=False, soft_wrap=one_line).print(text, markup=False)
