"""Tuning (issue 21): two workers against one on the same study, and what the storage costs.

1. Trials per minute of ``tune(..., jobs=2)`` over ``jobs=1`` on one study
   (journal storage; moons, 4000 rows, an MLP, 10 epochs a trial; the median
   pruner off so every trial is the same work; one torch thread per worker
   in both, as the ceiling's work has: with the default ``cores // jobs``
   the single worker gets 2 threads, which stall on a shared machine and
   would flatter the ratio), rounds alternating. Each
   round also measures the machine's two-process ceiling the way
   ``benchmarks/parallel.py --ceiling`` does (one-thread torch matmuls, two
   processes side by side vs one alone), so the speed-up is reported as a
   share of the ceiling measured at the same time.
2. The storage's cost per reported epoch (``trial.report`` +
   ``trial.should_prune`` under the median pruner, what ``TrialPruning`` does
   each epoch) and per trial (claim under the lock, ask, a heartbeat, user
   attributes, tell), journal file vs PostgreSQL (a throwaway server started
   like the tests', ``fsync=off``).

    python benchmarks/tune.py [--rounds 3] [--trials 10] [--ops 200] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from _common import machine, spread
from parallel import _side_by_side, _torch_work
from trainwell.selection import tune
from trainwell.selection.study import Storage, storage_spec

BASE = {"name": "bench", "seed": 0, "data": {"name": "moons", "n_samples": 4000, "batch_size": 64},
        "model": {"name": "mlp", "depth": 2, "width": 64}, "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 10, "progress": False}, "checkpoint": {"every_epochs": None, "best": False}}
SPACE = {"optim.lr": {"log_uniform": [1e-3, 3e-2]}, "model.width": {"int": [32, 96]}}


def _trials_per_minute(jobs: int, trials: int, out: Path) -> float:
    start = time.perf_counter()
    tune(BASE, SPACE, trials=trials, jobs=jobs, out=out, sampler="random", pruner="none", threads=1)
    return trials * 60 / (time.perf_counter() - start)


def _postgres() -> tuple[str, callable]:
    """A throwaway server (Debian's postgresql package): its URL and a function that stops it."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("no PostgreSQL binaries: apt-get install -y postgresql, or --skip-postgres")
    bin_dir, root = Path(found[-1]).parent, Path(tempfile.mkdtemp(prefix="trainwell-pg-"))
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        shutil.chown(root, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd):
        subprocess.run([*prefix, *map(str, cmd)], check=True, capture_output=True, timeout=120)

    run(bin_dir / "initdb", "-D", root / "data", "-U", "postgres", "--auth=trust")
    run(bin_dir / "pg_ctl", "-D", root / "data", "-l", root / "log", "-w", "start", "-o",
        f"-p {port} -c fsync=off -c listen_addresses=127.0.0.1 -k {root}")
    run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "bench")

    def stop():
        subprocess.run([*prefix, bin_dir / "pg_ctl", "-D", root / "data", "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/bench", stop


def _storage_costs(storage: str | None, root: Path, ops: int) -> tuple[float, float]:
    """Milliseconds per reported epoch and per trial's bookkeeping, on one storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # tune's own claim silences it too: its workers beat themselves, outside Study.optimize
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    opened = Storage(storage_spec(storage, root, heartbeat=30))
    name = f"cost-{time.time_ns()}"
    study = optuna.create_study(study_name=name, storage=opened.optuna, direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=0))
    for _ in range(5):  # earlier trials, so that the median pruner has something to compare
        t = study.ask()
        for epoch in range(1, 11):
            t.report(0.5 + 0.01 * epoch, epoch)
        study.tell(t, 0.6)
    trial_ms = []
    for _ in range(max(ops // 20, 5)):
        start = time.perf_counter()
        with opened.claim(name):
            t = study.ask()
            trial_id = opened.trial_id(study, t.number)
            opened.beat(trial_id)
        t.set_user_attr("dir", f"trial-{t.number}")
        t.set_user_attr("epochs", 10)
        study.tell(t, 0.7)
        trial_ms.append((time.perf_counter() - start) * 1e3)
    t = study.ask()
    start = time.perf_counter()
    for epoch in range(1, ops + 1):
        t.report(0.9, epoch)
        t.should_prune()
    per_epoch = (time.perf_counter() - start) * 1e3 / ops
    study.tell(t, 0.9)
    return per_epoch, statistics.median(trial_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--ops", type=int, default=200, help="reported epochs timed per storage")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}, {os.cpu_count()} cores (shared: other jobs may run; medians of rounds)")
    root = Path(tempfile.mkdtemp())
    rates: dict[int, list[float]] = {1: [], 2: []}
    speedups, ceilings = [], []
    for r in range(args.rounds):
        for jobs in ((1, 2) if r % 2 == 0 else (2, 1)):
            rates[jobs].append(_trials_per_minute(jobs, args.trials, root / f"tune-{r}-{jobs}"))
        pair = {procs: _side_by_side(_torch_work, procs) for procs in ((1, 2) if r % 2 else (2, 1))}
        speedups.append(rates[2][-1] / rates[1][-1])
        ceilings.append(2 * pair[1] / pair[2])
        print(f"  round {r}: {rates[1][-1]:.1f} trials/min with 1 worker, {rates[2][-1]:.1f} with 2, "
              f"speed-up {speedups[-1]:.2f}, ceiling x{ceilings[-1]:.2f}, share {speedups[-1] / ceilings[-1]:.3f}",
              flush=True)
    shares = [a / b for a, b in zip(speedups, ceilings)]
    print(f"tune, {args.trials} trials a study: 1 worker {spread(rates[1])} trials/min, 2 workers {spread(rates[2])}; "
          f"speed-up {spread(speedups)}; ceiling {spread(ceilings)}; share of the ceiling {spread(shares)} "
          f"(target >= 0.95)")
    stores: list[tuple[str, str | None]] = [("journal file", None)]
    stop = None
    if not args.skip_postgres:
        url, stop = _postgres()
        stores.append(("PostgreSQL (local server, fsync=off)", url))
    try:
        for label, storage in stores:
            epochs, trial = [], []
            for r in range(args.rounds):
                e, t = _storage_costs(storage, root / f"cost-{r}-{label.split()[0]}", args.ops)
                epochs.append(e)
                trial.append(t)
            print(f"storage {label}: {spread(epochs)} ms per reported epoch (report + should_prune), "
                  f"{spread(trial)} ms per trial's bookkeeping (claim, ask, heartbeat, attributes, tell)")
    finally:
        if stop is not None:
            stop()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
