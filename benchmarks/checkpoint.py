"""Checkpoint cost: write time and size vs torch.save, and the price of a checkpoint every epoch.

1. A ~10M-parameter MLP with Adam state (after one step): trainwell's
   ``save_checkpoint`` (safetensors + JSON, CRC, temporary file, fsync, rename)
   vs ``torch.save`` of the same state, alternating, in one process. torch.save
   is timed with and without an fsync (trainwell always syncs).
2. The price of a checkpoint every epoch in the default run (MLP on MNIST-1D).
   Whole runs on and off differ by less than this machine's run-to-run noise
   (the same run takes 2.9-5.1 s here), so the epochs are paired inside one
   long run instead: epochs go in blocks of two, and a coin decides whether
   the first epoch of a block ends with a checkpoint (the default callback's
   own save, written in the background during the block's second epoch).
   Runs are ~100 epochs long, like the default run, and repeated.
   Blocks with and without a checkpoint alternate at random under the same
   noise; the difference of their median times is what one checkpoint costs,
   reported as a share of an epoch.
3. Where that cost is paid: the time ``Checkpoint.save`` holds the training
   thread in the default run, with the background writer and written
   synchronously (``--on-thread`` runs only this part), with the CPU time of both
   threads per checkpoint and of a plain ``torch.save`` + fsync + rename of the same state.

4. The floor (``--floor``): the same paired per-epoch cost for the plain PyTorch
   checkpoint a hand-written loop writes at the end of an epoch: ``torch.save``
   of the model's and the optimizer's state_dicts to a temporary file, fsync,
   rename (less than trainwell keeps: no random states, no position, no history).

    python benchmarks/checkpoint.py [--rounds 10] [--blocks 300] [--on-thread] [--floor] [--threads 1]
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
from _common import add_threads_argument, apply_threads, interleaved, machine, ratio_summary, spread
from trainwell.loop import Checkpoint, save_checkpoint
from trainwell.loop.checkpoint import capture_rng


def torch_save(state: dict, path: Path, sync: bool = True) -> None:
    """The plain PyTorch baseline: ``torch.save``, and with ``sync`` flushed and fsync'ed (durable)."""
    with open(path, "wb") as f:
        torch.save(state, f)
        if sync:
            f.flush()
            os.fsync(f.fileno())


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
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--on-thread", action="store_true", help="only measure the training thread's share")
    parser.add_argument("--floor", action="store_true", help="only the per-epoch cost, trainwell vs torch.save")
    add_threads_argument(parser)
    args = parser.parse_args()
    apply_threads(args)
    print(f"machine: {machine()}")
    if args.floor:  # chunks of each kind alternate, so both see the machine's drift
        floor(args.rounds, args.blocks, Path(tempfile.mkdtemp()))
        return
    if args.on_thread:  # CPU time per thread: what one checkpoint costs whatever else runs on the machine
        d = Path(tempfile.mkdtemp())
        for background in (True, False):
            cb = on_thread_cost(background, d / str(background))
            m = {k: 1e3 * statistics.median(v) for k, v in
                 (("wall", cb.seconds), ("cpu", cb.cpu), ("writer", cb.writer_cpu or [0.0]), ("plain", cb.plain_cpu))}
            print(f"{'background writer' if background else 'synchronous write'}: Checkpoint.save holds the training "
                  f"thread {m['wall']:.2f} ms ({m['cpu']:.2f} ms CPU); writer thread {m['writer']:.2f} ms CPU; "
                  f"total {m['cpu'] + m['writer']:.2f} ms CPU per checkpoint; plain torch.save + fsync + rename "
                  f"{m['plain']:.2f} ms CPU (medians of {len(cb.seconds)} epochs)")
        return
    state = big_state()
    n = sum(v.numel() for v in state["model"].values())
    d = Path(tempfile.mkdtemp())

    def ours() -> None:
        save_checkpoint(d / "tw.safetensors", state, "bench")

    def theirs(sync: bool) -> None:
        torch_save(state, d / "torch.pt", sync)

    for sync in (True, False):
        a, b = interleaved(ours, lambda: theirs(sync), args.rounds, warmup=1)
        s = ratio_summary(a, b)
        print(f"{n:,} parameters + Adam state: trainwell {1e3 * s['median_candidate_s']:.0f} ms, "
              f"torch.save{' + fsync' if sync else ''} {1e3 * s['median_baseline_s']:.0f} ms, "
              f"ratio {s['ratio_of_medians']:.3f} (target <= 1.2)")
    print(f"size: trainwell {(d / 'tw.safetensors').stat().st_size / 2**20:.1f} MiB, "
          f"torch.save {(d / 'torch.pt').stat().st_size / 2**20:.1f} MiB")

    on, off, epoch = checkpoint_cost_per_epoch(args.blocks, d)
    print(f"default run, {args.blocks} blocks of 2 epochs in runs of ~100 epochs: with a checkpoint {1e3 * on:.1f} ms, without "
          f"{1e3 * off:.1f} ms; one checkpoint costs {1e3 * (on - off):.2f} ms = {100 * (on - off) / epoch:+.1f}% "
          f"of a {1e3 * epoch:.1f} ms epoch (target <= 2%)")


def floor(rounds: int, blocks: int, d: Path) -> None:
    """Per-epoch cost of trainwell's checkpoint and of torch.save + fsync, in alternating chunks.

    Each chunk (``blocks // rounds`` coin-drawn blocks) gives one estimate of each
    kind's cost; the script prints every chunk's, their median and range (the
    spread is the machine's noise), and the estimate from all blocks pooled.
    Two clocks: wall time, and the process's CPU time (all its threads, the
    writer's included), which other processes on the machine barely disturb:
    it is what a checkpoint costs when no core is spare.
    """
    clocks = ("wall", "cpu")
    pooled = {(plain, c): ([], [], []) for plain in (False, True) for c in clocks}
    per_chunk: dict[tuple[bool, str], list[float]] = {key: [] for key in pooled}
    for r in range(rounds):
        for plain in ((False, True) if r % 2 == 0 else (True, False)):
            measured = block_times(blocks // rounds, d / f"floor-{r}-{plain}", plain=plain, seed=r)
            for c in clocks:
                on, off, epochs = measured[c]
                per_chunk[plain, c].append(100 * (statistics.median(on) - statistics.median(off))
                                           / statistics.median(epochs))
                for sink, values in zip(pooled[plain, c], (on, off, epochs)):
                    sink += values
            print(f"  chunk {r} {'torch.save' if plain else 'trainwell'}: wall {per_chunk[plain, 'wall'][-1]:+.1f}%, "
                  f"cpu {per_chunk[plain, 'cpu'][-1]:+.1f}% of a {1e3 * statistics.median(measured['wall'][2]):.1f} ms "
                  f"epoch", flush=True)
    for (plain, c), (on, off, epochs) in pooled.items():
        cost, epoch = statistics.median(on) - statistics.median(off), statistics.median(epochs)
        print(f"{'torch.save + fsync' if plain else 'trainwell Checkpoint'} [{c}]: per chunk "
              f"{spread(per_chunk[plain, c])} %; pooled {len(on)} blocks with, {len(off)} without: one per-epoch "
              f"checkpoint costs {1e3 * cost:.2f} ms = {100 * cost / epoch:+.1f}% of a {1e3 * epoch:.1f} ms epoch"
              f"{' (target <= 2%)' if not plain else ''}")


class _CoinCheckpoint(Checkpoint):
    """The default checkpoint callback, saving at the end of a block's first epoch when the coin says so."""

    def __init__(self, directory: Path, coins: list[bool], plain: bool = False) -> None:
        super().__init__(directory, "bench", every_epochs=None, best=False)
        self.coins, self.marks, self.plain = coins, [], plain

    def on_epoch_start(self, trainer) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def on_epoch_end(self, trainer) -> None:
        block, first = divmod(trainer.epoch - 1, 2)
        if first == 0 and block < len(self.coins) and self.coins[block]:
            if self.plain:  # what a hand-written loop does: torch.save, durable and atomic
                tmp = self.directory / "plain.pt.tmp"
                torch_save({"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict()}, tmp)
                os.replace(tmp, self.directory / "plain.pt")
            else:
                self.save(trainer)


def block_times(blocks: int, d: Path, per_run: int = 50, plain: bool = False, seed: int = 0
                ) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Times of 2-epoch blocks with and without one checkpoint, and of every epoch, by clock (wall, cpu).

    Runs of ``2 * per_run + 1`` epochs (about the default run's 100) are repeated until ``blocks``
    blocks are measured: a checkpoint carries the run's history, so a 600-epoch run would price
    checkpoints of a run six times longer than the default.
    """
    coins = [bool(c) for c in torch.randint(0, 2, (blocks,), generator=torch.Generator().manual_seed(seed))]
    marks: list[tuple[float, float]] = []
    times: dict[int, list[float]] = {0: [], 1: []}
    epochs: dict[int, list[float]] = {0: [], 1: []}
    for r, start in enumerate(range(0, blocks, per_run)):
        chunk = coins[start:start + per_run]
        cb = _CoinCheckpoint(d / f"coin-{r}", chunk, plain)
        trainwell.train(overrides=[f"train.epochs={2 * len(chunk) + 1}", "checkpoint.every_epochs=null",
                                   "checkpoint.best=false"], out=d / f"coin-run-{r}", callbacks=[cb], progress=False)
        marks = cb.marks
        for i in (0, 1):
            starts = [m[i] for m in marks]
            times[i] += [starts[2 * b + 2] - starts[2 * b] for b in range(len(chunk))]
            epochs[i] += [b - a for a, b in zip(starts, starts[1:])]
    return {c: ([t for t, k in zip(times[i], coins) if k], [t for t, k in zip(times[i], coins) if not k], epochs[i])
            for i, c in enumerate(("wall", "cpu"))}


def checkpoint_cost_per_epoch(blocks: int, d: Path) -> tuple[float, float, float]:
    """Median time of a 2-epoch block with and without one checkpoint, and the median epoch."""
    on, off, epochs = block_times(blocks, d)["wall"]
    return statistics.median(on), statistics.median(off), statistics.median(epochs)


class _TimedCheckpoint(Checkpoint):
    """Times each save on the training thread (wall and CPU) and the writer thread's CPU per write;
    then, on the same state, a plain ``torch.save`` + fsync + rename (its CPU on the training thread)."""

    def __init__(self, directory: Path, background: bool) -> None:
        super().__init__(directory, "bench", every_epochs=None, best=False, background=background)
        self.seconds: list[float] = []
        self.cpu: list[float] = []
        self.writer_cpu: list[float] = []
        self.plain_cpu: list[float] = []

    def on_epoch_end(self, trainer) -> None:
        start, cpu = time.perf_counter(), time.thread_time()
        self.save(trainer)
        self.seconds.append(time.perf_counter() - start)
        self.cpu.append(time.thread_time() - cpu)
        self.wait()  # (not timed) so that the plain write below does not overlap ours
        cpu = time.thread_time()
        tmp = self.directory / "plain.pt.tmp"
        torch_save({"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict()}, tmp)
        os.replace(tmp, self.directory / "plain.pt")
        self.plain_cpu.append(time.thread_time() - cpu)

    def _write(self, path, snapshot, events) -> None:
        cpu = time.thread_time()
        super()._write(path, snapshot, events)
        if self.background:
            self.writer_cpu.append(time.thread_time() - cpu)


def on_thread_cost(background: bool, d: Path, epochs: int = 40) -> _TimedCheckpoint:
    """The time and CPU one checkpoint takes on the training thread (and the writer's CPU), per epoch."""
    cb = _TimedCheckpoint(d / "ck", background)
    trainwell.train(overrides=[f"train.epochs={epochs}", "checkpoint.every_epochs=null", "checkpoint.best=false"],
                    out=d / "run", callbacks=[cb], progress=False)
    return cb


if __name__ == "__main__":
    main()
