"""Shared helpers of the benchmark scripts: interleaved timing and a plain report."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def interleaved(candidate: Callable[[], object], baseline: Callable[[], object], rounds: int,
                warmup: int = 3) -> tuple[list[float], list[float]]:
    """Time ``candidate`` and ``baseline`` alternately (order flipped each round).

    Machines here are noisy; alternating in one process exposes both to the
    same noise, so their ratio is meaningful even when absolute times are not.
    """
    for _ in range(warmup):
        candidate()
        baseline()
    a, b = [], []
    for r in range(rounds):
        pair = [(candidate, a), (baseline, b)]
        for fn, sink in (pair if r % 2 == 0 else pair[::-1]):
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return a, b


def ratio_summary(a: list[float], b: list[float]) -> dict[str, float]:
    ratios = [x / y for x, y in zip(a, b)]
    return {"median_candidate_s": statistics.median(a), "median_baseline_s": statistics.median(b),
            "ratio_of_medians": statistics.median(a) / statistics.median(b),
            "median_of_ratios": statistics.median(ratios)}


def add_threads_argument(parser) -> None:
    """``--threads N``: torch's intra-op threads (default: torch's own choice).

    On a shared 2-core machine, two spinning intra-op threads stall whenever any
    other process runs (epochs of the default run took 0.5-8.7 s instead of 0.1 s
    with others' jobs on the cores); ``--threads 1`` keeps the figures comparable.
    """
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")


def apply_threads(args) -> None:
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def spread(values: list[float]) -> str:
    """Median and range of repeated measurements, e.g. ``1.8 (0.9 .. 2.6, n=6)``."""
    return f"{statistics.median(values):.2f} ({min(values):.2f} .. {max(values):.2f}, n={len(values)})"


def machine() -> str:
    return (f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"python {platform.python_version()}")
