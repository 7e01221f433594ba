"""The doctor's cost: time per training step with the doctor on (default settings) vs off.

The default model (MLP 3 x 256 on MNIST-1D, Adam, batch 128) is trained in
one process; blocks of 50 steps alternate between a loop with a Doctor
attached (hooks, NaN check every step, measurements every 10th step) and
the same loop without one. The ratio of the median block times is the
overhead (target <= 1.10).

    python benchmarks/doctor_overhead.py [--blocks 40] [--every 10] [--model gru]

``--model`` trains another model family on the same data (e.g. ``gru``: its
sampled steps also measure the gradient through time).
"""

from __future__ import annotations

import argparse
import statistics
import time

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
    parser.add_argument("--model", default=None, help="model.name (default: the default MLP)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    torch.manual_seed(0)
    cfg = Config.model_validate({"model": {"name": args.model}} if args.model else {})
    data = load_data(cfg.data.name)
    model = build_model(cfg.model, data.input_shape, data.n_classes, data.kind, data.mean, data.std)
    optimizer = build_optimizer(model, cfg.optim, cfg.reg)
    x, y, bs = data.train.x, data.train.y, cfg.data.batch_size
    order = torch.randperm(len(x))
    position = [0]

    def block(doctor: Doctor | None) -> float:
        start = time.perf_counter()
        for _ in range(args.steps):
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
    on, off = [], []
    for b in range(args.blocks):
        for use in ((True, False) if b % 2 == 0 else (False, True)):
            if use:
                doctor = Doctor(model, optimizer, every=args.every)
                on.append(block(doctor))
                doctor.close()
            else:
                off.append(block(None))
    per_on, per_off = statistics.median(on) / args.steps, statistics.median(off) / args.steps
    print(f"{cfg.model.name}, {args.blocks} blocks of {args.steps} steps, doctor every {args.every}: "
          f"on {1e3 * per_on:.3f} ms/step, off {1e3 * per_off:.3f} ms/step, ratio {per_on / per_off:.3f} "
          f"(target <= 1.10)")


if __name__ == "__main__":
    main()
