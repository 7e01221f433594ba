"""What an experiment is, and what running one gives back.

An experiment (one short file under :mod:`trainwell.lab.experiments`, after
nanoGPT) is a frozen dataclass config, a ``run`` that returns measurements as
plain JSON values, a ``verdict`` computed from those measurements by a
criterion written (in code and in words) before anything ran, and a ``plot``
that reads only the ``result.json`` the runner wrote.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["VERDICTS", "Experiment", "judge", "jsonable"]

VERDICTS = ("confirmed", "refuted", "inconclusive", "error")

Measurements = dict[str, Any]


@dataclass(frozen=True)
class Experiment:
    """One claim of the notes, its set-up and its criterion.

    Attributes:
        name: the experiment's name (``trainwell lab run NAME``).
        claim: the claim, in one line.
        source: the notes' section in words, and the paper.
        criterion: the criterion in words, with its numbers (written before running).
        config: the full set-up (a frozen dataclass instance).
        quick: the ``--quick`` set-up (fewer steps and seeds; still judged).
        run: ``f(config, seeds) -> measurements`` (plain JSON values).
        verdict: ``f(measurements, config) -> (verdict, reason)``; the verdict is one of
            ``confirmed``, ``refuted``, ``inconclusive``.
        plot: ``f(result, directory) -> [file names]``, drawing from the result.json dict only.
        summary: ``f(measurements) -> str``: the key numbers, for the one-line report.
        keys: the measurement keys the issue requires (checked after every run).
    """

    name: str
    claim: str
    source: str
    criterion: str
    config: Any
    quick: Any
    run: Callable[[Any, list[int]], Measurements]
    verdict: Callable[[Measurements, Any], tuple[str, str]]
    plot: Callable[[dict[str, Any], Path], list[str]]
    summary: Callable[[Measurements], str]
    keys: tuple[str, ...] = ()
    setup: str = ""

    def settings(self, quick: bool) -> Any:
        return self.quick if quick else self.config


def judge(checks: list[tuple[str, bool]], *, refute: list[tuple[str, bool]] = ()) -> tuple[str, str]:
    """A verdict from named checks: confirmed if all ``checks`` hold; refuted if any ``refute`` check holds
    (evidence against the claim); else inconclusive. The reason lists what failed."""
    against = [name for name, holds in refute if holds]
    if against:
        return "refuted", "against the claim: " + "; ".join(against)
    failed = [name for name, holds in checks if not holds]
    if not failed:
        return "confirmed", "all checks hold: " + "; ".join(name for name, _ in checks)
    return "inconclusive", "not shown: " + "; ".join(failed)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values: tuples to lists, numpy and torch scalars to floats, NaN/inf to strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if hasattr(value, "tolist"):  # numpy and torch
        return jsonable(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")
