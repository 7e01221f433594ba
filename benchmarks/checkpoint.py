"""Checkpoint cost: write time and size vs torch.save, and the price of a checkpoint every epoch.

1. A ~10M-parameter MLP with Adam state (after one step): trainwell's
   ``save_checkpoint`` (safetensors + JSON, CRC, temporary file, fsync, rename)
   vs ``torch.save`` of the same state, alternating, in one process. torch.save
   is timed with and without an fsync (trainwell always syncs).
2. The default run (`trainwell train`, MLP on MNIST-1D, 100 epochs) with a
   checkpoint every epoch vs checkpoints off, alternating whole runs.

    python benchmarks/checkpoint.py [--rounds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import trainwell
import trainwell.optim as two
from _common import interleaved, machine, ratio_summary
from trainwell.train import save_checkpoint
from trainwell.train.checkpoint import capture_rng


def big_state() -> dict:
    torch.manual_seed(0)
    layers, d = [], 40
    for _ in range(4):
        layers += [nn.Linear(d, 1800), nn.ReLU()]
        d = 1800
    model = nn.Sequential(*layers, nn.Linear(d, 10))
    opt = two.adam(model.parameters())
    model(torch.randn(8, 40)).sum().backward()
    opt.step()
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": capture_rng()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    state = big_state()
    n = sum(v.numel() for v in state["model"].values())
    d = Path(tempfile.mkdtemp())

    def ours() -> None:
        save_checkpoint(d / "tw.safetensors", state, "bench")

    def theirs(sync: bool) -> None:
        with open(d / "torch.pt", "wb") as f:
            torch.save(state, f)
            if sync:
                f.flush()
                os.fsync(f.fileno())

    for sync in (True, False):
        a, b = interleaved(ours, lambda: theirs(sync), args.rounds, warmup=1)
        s = ratio_summary(a, b)
        print(f"{n:,} parameters + Adam state: trainwell {1e3 * s['median_candidate_s']:.0f} ms, "
              f"torch.save{' + fsync' if sync else ''} {1e3 * s['median_baseline_s']:.0f} ms, "
              f"ratio {s['ratio_of_medians']:.3f} (target <= 1.2)")
    print(f"size: trainwell {(d / 'tw.safetensors').stat().st_size / 2**20:.1f} MiB, "
          f"torch.save {(d / 'torch.pt').stat().st_size / 2**20:.1f} MiB")

    times = {"every epoch": [], "off": []}
    for r in range(args.runs):
        for label in (("every epoch", "off") if r % 2 == 0 else ("off", "every epoch")):
            extra = [] if label == "every epoch" else ["checkpoint.every_epochs=null", "checkpoint.best=false"]
            start = time.perf_counter()
            trainwell.train(overrides=extra, out=d / f"run-{r}-{label.replace(' ', '-')}", progress=False)
            times[label].append(time.perf_counter() - start)
    on, off = statistics.median(times["every epoch"]), statistics.median(times["off"])
    print(f"default run (100 epochs): checkpoint every epoch {on:.2f} s, off {off:.2f} s, "
          f"cost {100 * (on / off - 1):+.1f}% (target <= 2%)")


if __name__ == "__main__":
    main()
