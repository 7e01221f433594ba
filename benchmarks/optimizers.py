"""Optimizer step time and state memory: trainwell's chains vs torch.optim's foreach implementations.

For each optimizer and model size, both optimizers hold their own copy of the
same parameters with the same (fixed, random) gradients; their ``step()`` calls
alternate in one process, and the script prints the ratio of median step times
and the bytes of optimizer state each keeps.

    python benchmarks/optimizers.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

import trainwell.optim as two
from _common import interleaved, machine, ratio_summary

PAIRS = {
    "momentum": (lambda p: two.momentum(p, lr=0.01, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True)),
    "rmsprop": (lambda p: two.rmsprop(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01, foreach=True)),
    "adagrad": (lambda p: two.adagrad(p, lr=0.01), lambda p: torch.optim.Adagrad(p, lr=0.01, foreach=True)),
    "adam": (lambda p: two.adam(p, lr=1e-3), lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
}


def mlp(width: int, depth: int, n_in: int = 40, n_out: int = 10) -> nn.Module:
    layers, d = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, n_out))


def state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
               if isinstance(v, torch.Tensor))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    sizes = {"~100k": mlp(256, 2), "~10M": mlp(1800, 4)}
    print(f"machine: {machine()}")
    print(f"{'model':>7} {'params':>10} {'optimizer':>9} {'trainwell ms':>12} {'torch ms':>9} {'ratio':>6} "
          f"{'state MB (tw/torch)':>20}")
    for size, model in sizes.items():
        n = sum(p.numel() for p in model.parameters())
        torch.manual_seed(0)
        grads = [torch.randn_like(p) * 1e-3 for p in model.parameters()]
        steps = 20 if n < 1e6 else 3
        for name, (ours, theirs) in PAIRS.items():
            a, b = copy.deepcopy(model), copy.deepcopy(model)
            for m in (a, b):
                for p, g in zip(m.parameters(), grads):
                    p.grad = g.clone()
            opt_a, opt_b = ours(a.parameters()), theirs(b.parameters())

            def run_a() -> None:
                for _ in range(steps):
                    opt_a.step()

            def run_b() -> None:
                for _ in range(steps):
                    opt_b.step()

            ta, tb = interleaved(run_a, run_b, args.rounds)
            s = ratio_summary(ta, tb)
            print(f"{size:>7} {n:>10,} {name:>9} {1e3 * s['median_candidate_s'] / steps:>12.3f} "
                  f"{1e3 * s['median_baseline_s'] / steps:>9.3f} {s['ratio_of_medians']:>6.3f} "
                  f"{state_bytes(opt_a) / 2**20:>9.2f}/{state_bytes(opt_b) / 2**20:<9.2f}", flush=True)


if __name__ == "__main__":
    main()
