"""What a run says on the terminal while it works (findings, repairs), on standard error."""

from __future__ import annotations

from trainwell.loop.distributed import is_main

__all__ = ["say"]


def say(show: bool, text: str, one_line: bool = False) -> None:
    """Print ``text`` to standard error when ``show`` (the run's progress setting); ``one_line``: never wrapped.
    In a data-parallel run, rank 0 alone speaks."""
    if show and is_main():
        from rich.console import Console  # rich's import costs ~50 ms: only when something is said

        Console(stderr=True, highlight=False, soft_wrap=one_line).print(text, markup=False)
