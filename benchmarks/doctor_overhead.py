"""The doctor's cost: time per training step with the doctor on (default settings) vs off.

The default model (MLP 3 x 256 on MNIST-1D, Adam, batch 128) is trained in
one process; blocks of 50 steps alternate between a loop with a Doctor
attached (hooks, NaN check every step, measurements every 10th step) and
the same loop without one. The ratio of the median block times is the
overhead (target <= 1.10).

A Doctor is attached afresh for each block. Its first steps do one-off work
that a run does once (the lint, the start's profile on standardised inputs:
one extra forward pass, the first sample): ``--start N`` (default 10) steps
after attaching are timed apart from the block and reported as the start's
cost in ms, against the whole default run (100 epochs). ``--start 0`` times
them inside the block, as before (a run with one start every 50 steps).

    python benchmarks/doctor_overhead.py [--blocks 40] [--every 10] [--model gru] [--record] [--start 10]

``--model`` trains another model family on the same data (e.g. ``gru``: its
sampled steps also measure the gradient through time). ``--record`` has the
doctor write its samples to a ``stats.jsonl`` as a run does (``doctor.record``,
on by default in trainwell's trainer): histograms, output mean and std, a line a sample.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import machine
from trainwell.config import Config
from trainwell.data import load_data
from trainwell.doctor import Doctor
from trainwell.models import build_model
from trainwell.optim.registry import build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--start", type=int, default=10, help="steps after attaching timed apart (0: in the block)")
    parser.add_argument("--model", default=None, help="model.name (default: the default MLP)")
    parser.add_argument("--record", action="store_true", help="also the doctor recording stats.jsonl, as a run does "
                        "(three variants in turn)")
    args = parser.parse_args()
    record = Path(tempfile.mkdtemp()) / "stats.jsonl" if args.record else None
    print(f"machine: {machine()}")
    torch.manual_seed(0)
    cfg = Config.model_validate({"model": {"name": args.model}} if args.model else {})
    data = load_data(cfg.data.name)
    model = build_model(cfg.model, data.input_shape, data.n_classes, data.kind, data.mean, data.std)
    optimizer = build_optimizer(model, cfg.optim, cfg.reg)
    x, y, bs = data.train.x, data.train.y, cfg.data.batch_size
    order = torch.randperm(len(x))
    position = [0]

    def block(doctor: Doctor | None, steps: int = args.steps) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            i = position[0] % (len(x) // bs)
            idx = order[i * bs:(i + 1) * bs]
            position[0] += 1
            xb, yb = x[idx], y[idx]
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if doctor is not None:
                doctor.observe(loss, inputs=xb, targets=yb)
            optimizer.step()
        return time.perf_counter() - start

    block(None)  # warm-up
    variants = ["off", "doctor"] + (["record"] if record else [])
    times: dict[str, list[float]] = {v: [] for v in variants}
    starts: dict[str, list[float]] = {v: [] for v in variants}
    for b in range(args.blocks):
        for v in variants[b % len(variants):] + variants[:b % len(variants)]:  # each in every position in turn
            begin = time.perf_counter()
            doctor = None if v == "off" else Doctor(model, optimizer, every=args.every,
                                                     record=record if v == "record" else None)
            if args.start:
                block(doctor, args.start)
                starts[v].append(time.perf_counter() - begin)
            times[v].append(block(doctor))
            if doctor is not None:
                doctor.close()
    per = {v: statistics.median(t) / args.steps for v, t in times.items()}
    print(f"{cfg.model.name}, {args.blocks} blocks of {args.steps} steps, doctor every {args.every}: "
          f"on {1e3 * per['doctor']:.3f} ms/step, off {1e3 * per['off']:.3f} ms/step, "
          f"ratio {per['doctor'] / per['off']:.3f} (target <= 1.10)")
    if args.start:
        run_steps = cfg.train.epochs * (len(x) // bs)
        for v in variants[1:]:
            extra = statistics.median(starts[v]) - statistics.median(starts["off"])
            print(f"{v}: the start (attaching + its first {args.start} steps) costs {1e3 * extra:.1f} ms more than "
                  f"{args.start} plain steps: {100 * extra / (run_steps * per['off']):.2f}% of the default run's "
                  f"{run_steps} steps")
    if record:
        print(f"recording stats.jsonl: {1e3 * per['record']:.3f} ms/step, ratio to off {per['record'] / per['off']:.3f} "
              f"(target <= 1.10), to the doctor without recording {per['record'] / per['doctor']:.3f}")


if __name__ == "__main__":
    main()
