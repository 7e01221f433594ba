"""Data-parallel training (issue 21): ``trainwell train --nproc 2`` against one process, steps per second.

Both arms train the same run at the same global batch (the default MLP on
MNIST-1D, batch 256 unless told; the doctor and checkpoints off unless
``--doctor``, so that what is timed is the data-parallel loop): one process with
one torch thread, or two processes under torchrun with one thread each. Steps per
second is the run's updates over its ``train_seconds`` (rank 0's fit, from
metrics.json: process start, data loading and the final metrics are outside
it; each epoch's validation is inside). The ratio is two processes' steps per
second over one's: 2.00 would be two free cores with no cost of communication.

Each round also measures the machine's two-process ceiling as
``benchmarks/parallel.py --ceiling`` does (one-thread torch matmuls, two
processes side by side vs one alone), so the ratio is reported as a share of
the ceiling measured at the same time. Rounds alternate which arm goes first.

``--breakdown`` measures instead where a data-parallel step's time goes (two
gloo processes under torchrun, one thread each, half the batch a rank): the
step alone, the step through DDP, an all-reduce of the gradients' size, and one
of 3 numbers (the size of trainwell's per-step agreement).

    python benchmarks/ddp.py [--rounds 3] [--epochs 3] [--batch-size 256] [--doctor] [--breakdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine, spread
from parallel import _side_by_side, _torch_work

ROOT = Path(__file__).resolve().parents[1]


def _steps_per_second(nproc: int, out: Path, args: argparse.Namespace) -> float:
    """One run on ``nproc`` processes; its updates per second of training."""
    sets = [f"train.epochs={args.epochs}", f"data.batch_size={args.batch_size}", "train.progress=false",
            "checkpoint.every_epochs=null", "checkpoint.best=false", "seed=0"]
    if not args.doctor:
        sets.append("doctor.enabled=false")
    if nproc == 1:
        sets.append("train.threads=1")
    command = [sys.executable, "-m", "trainwell", "train", "--quiet", "--out", str(out),
               *(a for s in sets for a in ("--set", s)), *(["--nproc", str(nproc)] if nproc > 1 else [])]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=ROOT)
    metrics = json.loads((out / "metrics.json").read_text())
    steps = json.loads((out / "history.jsonl").read_text().splitlines()[-1])["step"]
    return steps / metrics["train_seconds"]


def _breakdown_worker(batch: int) -> None:
    """One rank of ``--breakdown``: milliseconds per step of each part, printed by rank 0."""
    import time

    import torch
    import torch.distributed as dist
    from torch import nn

    torch.set_num_threads(1)
    dist.init_process_group("gloo")

    def mlp() -> nn.Module:  # the default run's MLP on MNIST-1D: 40 inputs, 3 x 256, 10 classes
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                             nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    x, y = torch.randn(batch // 2, 40), torch.randint(0, 10, (batch // 2,))

    def stepper(model: nn.Module, forward: nn.Module):
        opt = torch.optim.Adam(model.parameters())

        def step() -> None:
            opt.zero_grad()
            nn.functional.cross_entropy(forward(x), y).backward()
            opt.step()
        return step

    def ms(fn, n: int = 200) -> float:
        for _ in range(20):
            fn()
        dist.barrier()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        dist.barrier()
        return (time.perf_counter() - start) / n * 1e3

    plain, wrapped = mlp(), mlp()
    ddp = nn.parallel.DistributedDataParallel(wrapped, forward_sync_buffers=False)
    grads = torch.zeros(sum(p.numel() for p in plain.parameters()))
    three = torch.zeros(3, dtype=torch.float64)
    parts = {"step alone (each rank at once)": ms(stepper(plain, plain)), "step through DDP": ms(stepper(wrapped, ddp)),
             f"all-reduce of {grads.numel()} floats": ms(lambda: dist.all_reduce(grads)),
             "all-reduce of 3 numbers + read-back": ms(lambda: (dist.all_reduce(three), three[0].item()))}
    if dist.get_rank() == 0:
        print(f"{batch // 2} rows a rank, load average {os.getloadavg()[0]:.2f}")
        for name, value in parts.items():
            print(f"  {name}: {value:.2f} ms")
    del ddp
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--doctor", action="store_true", help="keep the doctor on (its per-step cost in both arms)")
    parser.add_argument("--breakdown", action="store_true", help="where a 2-process step's time goes, instead")
    parser.add_argument("--breakdown-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown_worker:
        _breakdown_worker(args.batch_size)
        return
    if args.breakdown:
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        __file__, "--breakdown-worker", "--batch-size", str(args.batch_size)], check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        return
    print(f"machine: {machine()}, cores {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    root = Path(tempfile.mkdtemp(prefix="trainwell-ddp-"))
    rates: dict[int, list[float]] = {1: [], 2: []}
    ratios, ceilings = [], []
    for r in range(args.rounds):
        for nproc in ((1, 2) if r % 2 == 0 else (2, 1)):
            rates[nproc].append(_steps_per_second(nproc, root / f"run-{r}-{nproc}", args))
        pair = {procs: _side_by_side(_torch_work, procs) for procs in ((1, 2) if r % 2 else (2, 1))}
        ratios.append(rates[2][-1] / rates[1][-1])
        ceilings.append(2 * pair[1] / pair[2])
        print(f"  round {r}: 1 process {rates[1][-1]:.1f} steps/s, 2 processes {rates[2][-1]:.1f} steps/s, "
              f"ratio {ratios[-1]:.2f}, ceiling x{ceilings[-1]:.2f}, share {ratios[-1] / ceilings[-1]:.2f}, "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    shares = [a / b for a, b in zip(ratios, ceilings)]
    print(f"steps per second at global batch {args.batch_size}: 1 process {spread(rates[1])}, "
          f"2 processes {spread(rates[2])}")
    print(f"ratio 2/1 {spread(ratios)}; two-process ceiling x{spread(ceilings)}; ratio as a share of the same "
          f"round's ceiling {spread(shares)} (median {statistics.median(shares):.2f})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
