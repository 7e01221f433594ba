"""The lab: every claim of the notes, run, measured, plotted and judged.

Each experiment (one short file in :mod:`trainwell.lab.experiments`) states a
claim, its source in the notes, and a criterion written before it ran; its
verdict (confirmed, refuted or inconclusive) is computed from the
measurements. ``trainwell lab run NAME|all`` writes ``DIR/NAME/result.json``,
PNG plots drawn from it and a README.

Example:
    >>> import trainwell.lab
    >>> result = trainwell.lab.run("init_schemes", quick=True)          # doctest: +SKIP
    >>> result.verdict, result.measurements["ratio_last_first"]        # doctest: +SKIP
    >>> result.plot()                                                   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from trainwell.errors import TrainwellError
from trainwell.lab.base import VERDICTS, Experiment
from trainwell.lab.experiments import EXPERIMENTS
from trainwell.lab.result import Result
from trainwell.lab.runner import execute, write_result

__all__ = ["EXPERIMENTS", "VERDICTS", "Experiment", "Result", "check_names", "run"]


def check_names(names: list[str]) -> list[str]:
    """``names`` (``all`` expands to every experiment), or a TrainwellError listing the valid names."""
    if names == ["all"] or names == []:
        return list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise TrainwellError(f"unknown experiment {', '.join(map(repr, unknown))}; valid names: all, "
                             + ", ".join(EXPERIMENTS))
    return list(dict.fromkeys(names))


def run(name: str, quick: bool = False, seeds: int | None = None, out: str | Path | None = None,
        threads: int | None = 1) -> Result:
    """Run one experiment in this process and judge it.

    Args:
        name: an experiment of :data:`EXPERIMENTS`.
        quick: the shorter set-up (fewer steps and seeds), still judged; marked ``quick: true``.
        seeds: how many seeds (0, 1, ..., seeds-1); default the experiment's.
        out: write ``out/NAME/`` (result.json, plots, README.md); None keeps the result in memory
            (``result.plot()`` then draws into a temporary directory).
        threads: torch threads while it runs (restored afterwards, like the global RNG); None leaves them.

    Returns:
        A :class:`Result` with ``.measurements``, ``.verdict`` (``error`` if it crashed, with ``.reason``) and
        ``.plot()``.

    Raises:
        TrainwellError: an unknown name or a bad seed count.
    """
    (name,) = check_names([name]) if name != "all" else (None,)
    if name is None:
        raise TrainwellError("trainwell.lab.run runs one experiment; loop over trainwell.lab.EXPERIMENTS for all")
    if seeds is not None and seeds < 1:
        raise TrainwellError(f"seeds must be >= 1, got {seeds}")
    experiment = EXPERIMENTS[name]
    result = execute(experiment, quick=quick, seeds=seeds, threads=threads)
    if out is not None:
        result = write_result(result, Path(out) / name, experiment.summary)
    return result
