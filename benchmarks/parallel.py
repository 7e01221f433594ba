"""Parallel model selection and sampler speed.

1. ``trainwell cv`` with 4 folds of the default MLP on MNIST-1D (20 epochs), ``--jobs 2`` vs
   ``--jobs 1``, alternating; the speed-up is jobs-1 time / jobs-2 time (target >= 1.7 on 2 cores).
2. SMOTE and NearMiss on 100k rows (20 features, 10% minority) vs imbalanced-learn's, alternating
   (target: within 1.5x).

3. The machine's own ceiling (``--ceiling``): the same single-threaded work (a pure-Python loop,
   then one-thread torch matmuls) in two processes at once vs one alone. No parallel program can
   beat it here, so it bounds what ``--jobs 2`` can reach. With ``--ceiling`` the cv runs and the
   ceiling's (one-thread torch matmuls: floating-point work like training) are interleaved round
   by round in the same run, and the script prints the cv speed-up as a share of that ceiling
   (target >= 0.95); the samplers are skipped.

    python benchmarks/parallel.py [--rounds 2] [--epochs 20] [--ceiling | --ceiling-only]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from _common import interleaved, machine, ratio_summary, spread
from trainwell.selection import cross_validate


def _python_work() -> None:
    total = 0
    for i in range(6_000_000):
        total += i * i


def _torch_work() -> None:
    import torch
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    for _ in range(1500):
        a = torch.tanh(a @ a * 1e-2)


def _side_by_side(work, procs: int) -> float:
    """Seconds until ``procs`` forked processes have each done ``work`` once."""
    ctx = multiprocessing.get_context("fork")
    start = time.perf_counter()
    workers = [ctx.Process(target=work) for _ in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def ceiling(rounds: int) -> None:
    for name, work in [("pure-Python loop", _python_work), ("one-thread torch matmuls", _torch_work)]:
        one, two = [], []
        for r in range(rounds + 1):
            for procs in ((1, 2) if r % 2 == 0 else (2, 1)):
                (one if procs == 1 else two).append(_side_by_side(work, procs))
        alone, both = statistics.median(one[1:]), statistics.median(two[1:])  # first round warms up
        print(f"machine ceiling, {name}: one process {alone:.2f} s, two side by side {both:.2f} s, "
              f"throughput x{2 * alone / both:.2f} (two full cores: x2.00)")


def _cv(epochs: int, jobs: int, out: Path) -> float:
    start = time.perf_counter()
    cross_validate({"train": {"epochs": epochs, "progress": False},
                    "checkpoint": {"every_epochs": None, "best": False}}, folds=4, jobs=jobs, out=out)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--ceiling", action="store_true",
                        help="cv --jobs 1/2 and the two-process ceiling, interleaved: the speed-up's share of it")
    parser.add_argument("--ceiling-only", action="store_true", help="only the machine's ceiling (Python and torch)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.ceiling_only:
        ceiling(max(args.rounds, 3))
        return
    root = Path(tempfile.mkdtemp())
    times: dict[int, list[float]] = {1: [], 2: []}
    speedups, ceilings = [], []
    for r in range(args.rounds):
        for jobs in ((1, 2) if r % 2 == 0 else (2, 1)):
            times[jobs].append(_cv(args.epochs, jobs, root / f"cv-{r}-{jobs}"))
        speedups.append(times[1][-1] / times[2][-1])
        if args.ceiling:  # the same round's ceiling: both see the machine as it is now
            pair = {procs: _side_by_side(_torch_work, procs) for procs in ((1, 2) if r % 2 else (2, 1))}
            ceilings.append(2 * pair[1] / pair[2])
            print(f"  round {r}: cv speed-up {speedups[-1]:.2f}, ceiling x{ceilings[-1]:.2f}, "
                  f"share {speedups[-1] / ceilings[-1]:.3f}", flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"cv 4 folds x {args.epochs} epochs: --jobs 1 {one:.1f} s, --jobs 2 {two:.1f} s, speed-up {one / two:.2f} "
          f"(target >= 1.7)")
    if args.ceiling:
        shares = [a / b for a, b in zip(speedups, ceilings)]
        print(f"two-process ceiling (one-thread torch matmuls) x{statistics.median(ceilings):.2f}; cv speed-up as a "
              f"share of the same round's ceiling: median {spread(shares)} (target >= 0.95)")
        return

    import numpy as np
    from imblearn.over_sampling import SMOTE as ISMOTE
    from imblearn.under_sampling import NearMiss as INearMiss
    from sklearn.datasets import make_classification

    from trainwell.data.imbalance import SMOTE, NearMiss

    X, y = make_classification(n_samples=100_000, n_features=20, weights=[0.9, 0.1], random_state=0)
    X = X.astype(np.float64)
    for name, ours, theirs in [("SMOTE", SMOTE(random_state=0), ISMOTE(random_state=0)),
                               ("NearMiss-1", NearMiss(version=1), INearMiss(version=1))]:
        a, b = interleaved(lambda o=ours: o.fit_resample(X, y), lambda t=theirs: t.fit_resample(X, y),
                           args.rounds + 1, warmup=1)
        s = ratio_summary(a, b)
        print(f"{name} on 100k rows: trainwell {s['median_candidate_s']:.2f} s, imbalanced-learn "
              f"{s['median_baseline_s']:.2f} s, ratio {s['ratio_of_medians']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
