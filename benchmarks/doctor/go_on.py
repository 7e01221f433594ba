"""A repair from the last good state against one from scratch, on a fault that starts late.

    python benchmarks/doctor/go_on.py [--rounds 3]

Momentum SGD at 0.3 on digits (3 x 128, 30 epochs) learns for about ten epochs, then its loss
climbs: the doctor stops it for divergence and lowers the rate. With trainwell as it is, the
repair goes on from the kept epoch; with the kept state withheld, it starts from scratch.
Both alternate ``--rounds`` times; prints median wall times and validation accuracies.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

import trainwell  # noqa: E402
from _common import machine  # noqa: E402
from trainwell.runs import repair as repair_module  # noqa: E402

LATE = {"data": {"name": "digits"}, "model": {"width": 128, "depth": 3}, "optim": {"name": "momentum", "lr": 0.3},
        "train": {"epochs": 30, "progress": False}, "checkpoint": {"every_epochs": None, "best": False},
        "doctor": {"repair": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    going_on = repair_module.going_on_from
    root = Path(tempfile.mkdtemp())
    times: dict[str, list[float]] = {"last good state": [], "scratch": []}
    result = {}
    trainwell.train(LATE, out=root / "warm-up")  # imports and first-call costs, untimed
    for i in range(args.rounds):
        for mode in times:
            repair_module.going_on_from = going_on if mode == "last good state" else (lambda *a: None)
            start = time.perf_counter()
            run = trainwell.train(LATE, out=root / f"{mode}-{i}")
            times[mode].append(time.perf_counter() - start)
            repair = run.diagnosis["repairs"][0]
            result[mode] = (run.metrics["val"]["accuracy"], repair["from_epoch"], repair["before"]["epochs_run"],
                            repair["changes"])
    repair_module.going_on_from = going_on
    for mode, seconds in times.items():
        val, start, stopped, changes = result[mode]
        print(f"{mode:16s} median {statistics.median(seconds):.3f} s (of {', '.join(f'{s:.3f}' for s in seconds)}); "
              f"stopped at epoch {stopped}, went on from epoch {start}, {changes}; val accuracy {val:.3f}")


if __name__ == "__main__":
    main()
