"""Findings that need more than one run: degradation (He et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence

from trainwell.doctor.findings import Finding

__all__ = ["degradation"]


def degradation(results: Sequence[tuple[int, float]], tolerance: float = 0.1) -> Finding | None:
    """Compare plain networks of several depths trained alike.

    Degradation is a deeper plain network fitting its *training* data worse
    than a shallower one - not overfitting (that is worse on validation), but
    an optimisation problem that residual connections remove.

    Args:
        results: ``(depth, best training loss)`` per run.
        tolerance: how much higher (relative) the deeper net's loss must be.

    Returns:
        A ``degradation`` warning naming the depths, or None.

    Example:
        >>> degradation([(4, 0.10), (20, 0.35)]).evidence["deeper"]
        20
    """
    ordered = sorted(results)
    for i, (shallow, shallow_loss) in enumerate(ordered):
        for deep, deep_loss in ordered[i + 1:]:
            if deep > shallow and deep_loss > shallow_loss * (1 + tolerance):
                return Finding("degradation", "warning", 0, 0,
                               {"shallower": shallow, "shallower_train_loss": shallow_loss, "deeper": deep,
                                "deeper_train_loss": deep_loss}, cause="depth")
    return None
