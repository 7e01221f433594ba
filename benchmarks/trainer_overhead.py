"""Trainer overhead: trainwell's loop vs a hand-written PyTorch loop doing the same work.

Both train the default MLP (3 x 256, ReLU, dropout 0.2) on MNIST-1D with Adam,
batch size 128: shuffle, mini-batches, forward, loss, backward, step, the
running train loss/accuracy, and a validation pass at the end of each epoch.
They start from identical weights, run alternately in one process, one epoch at
a time, and the script prints the ratio of time per step: once with torch's
Adam in both (the loop's own overhead), once with trainwell's Adam chain in the
trainer (the whole stack, as `trainwell train` runs it).

    python benchmarks/trainer_overhead.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import interleaved, machine, ratio_summary
from trainwell.config import Config
from trainwell.data import load_data
from trainwell.models import build_model
from trainwell.optim import build_optimizer
from trainwell.loop import HistoryFile, Trainer, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()

    cfg = Config()
    torch.manual_seed(cfg.seed)
    data = load_data(cfg.data.name, seed=cfg.data.seed)
    print(f"machine: {machine()}")
    for label, make in (("torch.optim.Adam in both", lambda m: torch.optim.Adam(m.parameters(), lr=cfg.optim.lr)),
                        ("trainwell's adam in the trainer", lambda m: build_optimizer(m, cfg.optim, cfg.reg))):
        measure(label, make, cfg, data, args.rounds)


def measure(label, make_optimizer, cfg, data, rounds: int) -> None:
    torch.manual_seed(cfg.seed)
    model_a = build_model(cfg.model, data.input_shape, data.n_classes, data.kind, data.mean, data.std)
    model_b = copy.deepcopy(model_a)
    opt_a = make_optimizer(model_a)
    opt_b = torch.optim.Adam(model_b.parameters(), lr=cfg.optim.lr)
    bs = cfg.data.batch_size
    train, val = data.train, data.val
    steps = -(-len(train) // bs)

    tmp = Path(tempfile.mkdtemp())
    trainer = Trainer(model_a, opt_a, F.cross_entropy, train, val, epochs=1, batch_size=bs,
                      generator=torch.Generator().manual_seed(0), callbacks=[HistoryFile(tmp / "history.jsonl")])

    def trainwell_epoch() -> None:
        trainer.epochs = trainer.epoch + 1
        trainer.fit()

    gen = torch.Generator().manual_seed(0)

    def plain_epoch() -> None:
        model_b.train()
        order = torch.randperm(len(train), generator=gen)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.long)
        for start in range(0, len(train), bs):
            idx = order[start:start + bs]
            x, y = train.x[idx], train.y[idx]
            out = model_b(x)
            loss = F.cross_entropy(out, y)
            opt_b.zero_grad(set_to_none=True)
            loss.backward()
            opt_b.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (out.detach().argmax(1) == y).sum()
        _ = loss_sum.item() / len(train), correct.item() / len(train)
        evaluate(model_b, val, F.cross_entropy)

    a, b = interleaved(trainwell_epoch, plain_epoch, rounds)
    s = ratio_summary(a, b)
    print(f"[{label}] default MLP on MNIST-1D, batch {bs}, {steps} steps per epoch, {rounds} rounds interleaved")
    print(f"time per step: trainwell {1e3 * s['median_candidate_s'] / steps:.3f} ms, "
          f"plain PyTorch {1e3 * s['median_baseline_s'] / steps:.3f} ms")
    print(f"ratio trainwell / plain: {s['ratio_of_medians']:.3f} (median of per-round ratios "
          f"{s['median_of_ratios']:.3f}; target <= 1.05)")


if __name__ == "__main__":
    main()
