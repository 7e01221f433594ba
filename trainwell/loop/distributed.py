"""Data-parallel training: one run on several processes with torch.distributed (gloo on CPU, NCCL on CUDA).

The processes ("ranks") are started by torchrun's elastic agent
(``torchrun --nproc_per_node N -m trainwell train``, or ``trainwell train --nproc N``),
which gives each its rank and the address to meet at. A run on N processes is the
run on one, up to float rounding:

* every rank draws the same order of the training rows (the trainer's seeded
  generator) and loads the same global batch; the callbacks of ``batch_start``
  (augmentation) see it whole, then each rank keeps its contiguous part
  (:meth:`Shard.part`): parts differ by one row at most and none is empty;
* DistributedDataParallel sums the ranks' gradients weighted by each part's
  share of the global batch (a communication hook), which is the gradient of the
  whole batch's mean loss, also for a last batch that does not split evenly;
* after the backward pass the ranks all-reduce one small tensor: a stop flag
  (a callback asked to stop on some rank, such as the doctor on a NaN loss) and
  the batch's loss and accuracy sums. Every rank then stops, or goes on,
  together and before the update, so the weights stay finite everywhere. It is
  done every step, not every epoch, because DDP's gradient all-reduce spreads one
  rank's NaN into every rank's gradients at once;
* evaluation splits the rows between the ranks without padding
  (:func:`shard_range`) and all-reduces sums and counts: each row counts once.

Randomness: rank 0 draws from the run's seeded stream, which checkpoints keep;
rank ``r > 0`` reseeds from ``(seed, r, step)`` before each step (dropout), so
that a resumed run continues every rank's stream exactly. Batch-norm
statistics are each rank's own in training; rank 0's are copied to every rank
before each evaluation (and rank 0's model is the one saved).
"""

from __future__ import annotations

import atexit
import datetime
import gc
import os
import sys
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from trainwell.data.datasets import Split
from trainwell.losses import summed_over_rows
from trainwell.loop.trainer import evaluate

if TYPE_CHECKING:
    from trainwell.loop.trainer import Trainer

__all__ = ["Shard", "all_gather", "broadcast", "check_batches", "exit_alone", "is_main", "launch", "launched_rank",
           "launched_world", "leave", "on_main", "rank", "shard_range", "start", "world_size"]

TIMEOUT = datetime.timedelta(minutes=10)  # a rank that waits this long for the others fails (the agent stops all)


def launched_world() -> int:
    """The number of processes torchrun started for this run (``WORLD_SIZE``; 1 when not under torchrun)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def launched_rank() -> int:
    """This process's rank as torchrun gave it (``RANK``; 0 when not under torchrun), group or no group."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def launch(nproc: int, args: list[str]) -> int:
    """Run ``python -m trainwell ARGS`` on ``nproc`` processes of this machine under torchrun's elastic agent
    (``torchrun --standalone --nproc-per-node NPROC -m trainwell ARGS``); return the exit code.

    The processes meet on a free loopback port. Each gets ``OMP_NUM_THREADS`` =
    cores / ``nproc`` unless it is set. The code is rank 0's, or that of the
    first rank that exited with one if rank 0 did not (128 + N when all were
    ended by signals, N the first's).
    """
    import logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # the workers print their own errors in one line; the agent's own report of them would repeat it at length
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        torchrun.run(torchrun.parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "trainwell",
                                          *args]))
    except ChildFailedError as err:  # a process that exited, not one the agent stopped after it (by a signal)
        exited = {r: f.exitcode for r, f in sorted(err.failures.items()) if f.exitcode >= 0}
        if exited:
            return exited.get(0, next(iter(exited.values())))
        return 128 - err.get_first_failure()[1].exitcode
    except SignalException as err:  # Ctrl-C or SIGTERM to the agent: it stopped the workers
        return 128 + int(err.sigval)
    return 0


ERROR_GRACE = 2.0  # seconds a rank > 0 waits before saying its error: rank 0, meeting the same, says it first


def exit_alone(code: int, line: str) -> NoReturn:
    """Print ``line`` on standard error and end this process with ``code``, waiting for no other rank.

    Outside torchrun it is ``sys.exit(code)`` after the line. Under torchrun the
    process ends at once (``os._exit``, its output flushed): waiting at exit for
    ranks still training would keep it, and torchrun's agent, which stops all
    ranks when one ends, from seeing it end. The ranks of a run meet the same
    errors (they check the same config and data): rank 0 says its line; a rank
    > 0 waits ``ERROR_GRACE`` seconds first, and is stopped by the agent before
    it speaks unless the error was its own alone (then it says it, with its rank).
    """
    if launched_world() == 1 and world_size() == 1:
        sys.stderr.write(line + "\n")
        sys.exit(code)
    if launched_rank() > 0:
        time.sleep(ERROR_GRACE)
        line = f"rank {launched_rank()}: {line}"
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    os._exit(code)


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The processes of the run (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the process that writes the run's files and prints."""
    return rank() == 0


def start(device: torch.device) -> torch.device:
    """Join the run's process group when torchrun started several processes; return the device to train on.

    Under torchrun (``WORLD_SIZE`` > 1) the process group is made once per process,
    from torchrun's environment: gloo for CPU training, NCCL for CUDA (each rank
    on the GPU of its ``LOCAL_RANK``; untested here, no GPUs). It is destroyed at
    exit. A group the caller made already is used as it is. Elsewhere nothing happens.
    """
    if launched_world() == 1 and not (dist.is_available() and dist.is_initialized()):
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        atexit.register(leave)
    return device


_SHARDS: weakref.WeakSet[Shard] = weakref.WeakSet()


def leave() -> None:
    """At exit: DDP's reducers go, then the ranks wait for each other, then the process group goes.

    Without both, about one exit in 20 aborted ("terminate called without an
    active exception", measured here with torchrun and 2 gloo processes). A
    process that ends by an uncaught error waits for no one (the others may be
    training still); the ``trainwell`` command ends on its errors by :func:`exit_alone`.
    """
    for shard in list(_SHARDS):
        shard.close()
    gc.collect()
    if not dist.is_initialized() or getattr(sys, "last_value", None) is not None:
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=30))
        else:
            dist.barrier()
    except Exception:  # noqa: BLE001 - a rank gone already: leave all the same
        pass
    dist.destroy_process_group()


def _device() -> torch.device:
    """Where the group's tensors must live: the current GPU for NCCL, the CPU for gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (``value`` itself outside a process group)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=_device())
    return box[0]


def on_main(make: Callable[[], Any]) -> Any:
    """``make()`` run on rank 0 alone, its result (or the error it raised) given to every rank.

    For what one process must do for all (create the run directory): an error
    of rank 0's is raised on every rank, so that all of them stop at once
    instead of waiting for it.
    """
    if world_size() == 1:
        return make()
    outcome: tuple[bool, Any] = (True, None)
    if is_main():
        try:
            outcome = (True, make())
        except Exception as err:  # noqa: BLE001 - raised again below, on every rank
            outcome = (False, err)
    ok, value = broadcast(outcome)
    if not ok:
        raise value
    return value


def all_gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order (``[value]`` outside a process group)."""
    if world_size() == 1:
        return [value]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that ``rank`` of ``world`` takes: contiguous, no padding, sizes within one."""
    return rank * n // world, (rank + 1) * n // world


def check_batches(rows: int, batch_size: int, world: int) -> str | None:
    """Why ``world`` ranks cannot split every batch of an epoch (one has fewer rows than ranks), or None."""
    size = min(batch_size, rows)
    last = rows - (-(-rows // size) - 1) * size
    if size < world:
        return f"each batch of {size} rows is split between {world} processes; use data.batch_size >= {world}"
    if last < world:
        return (f"the epoch's last batch has {last} row(s) ({rows} training rows at data.batch_size={size}) and "
                f"cannot be split between {world} processes; choose a batch size that leaves at least {world}")
    return None


class _Share:
    """The communication hook's state: this rank's rows over the global batch's (not the Shard: the reducer
    would hold it, a cycle through C++ that the garbage collector cannot see)."""

    value = 0.5


def _weighted_all_reduce(share, bucket):  # no annotations: DDP checks them, and this module's are strings
    """DDP's communication hook: the sum over ranks of each rank's gradient times its share of the batch."""
    grads = bucket.buffer()
    grads.mul_(share.value)
    return dist.all_reduce(grads, async_op=True).get_future().then(lambda fut: fut.value()[0])


class Shard:
    """This process's part of a data-parallel run: the trainer's ``shard`` (see the module's notes).

    It wraps ``model`` in :class:`~torch.nn.parallel.DistributedDataParallel`
    (which copies rank 0's parameters to every rank) for the trainer's training
    forward passes; the trainer and its callbacks keep the plain model (its
    state's keys, the doctor's layer names are those of one process).

    Args:
        model: the model, on this rank's device.
        seed: the run's seed (rank ``r > 0`` reseeds its dropout from it every step).
    """

    def __init__(self, model: nn.Module, seed: int = 0) -> None:
        if world_size() == 1:
            raise ValueError("a Shard needs a process group of several processes (see trainwell.loop.distributed)")
        self.rank, self.world, self.seed = rank(), world_size(), seed
        self.model = model
        device = next(model.parameters()).device
        self.ddp = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False)
        self._share = _Share()  # this rank's rows / the global batch's, set by part()
        self._share.value = 1.0 / self.world
        self.ddp.register_comm_hook(self._share, _weighted_all_reduce)
        _SHARDS.add(self)
        self.batch_sums: tuple[int, int, torch.Tensor, torch.Tensor] = (0, 0, torch.zeros(()), torch.zeros(()))
        self._global: tuple[int, int] = (0, 0)

    def forward(self, inner: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None
                ) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
        """The trainer's ``forward`` through DDP: training passes of the model go through the wrapper (whose
        backward all-reduces the gradients); passes without gradients (the doctor's probes) do not."""
        def forward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if model is self.model and torch.is_grad_enabled():
                model = self.ddp
            return inner(model, x, y) if inner is not None else model(x)
        return forward

    def part(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of the global batch of update ``step``; sets the gradient weight and reseeds the
        dropout of rank > 0 from ``(seed, rank, step)``."""
        n = len(yb)
        lo, hi = shard_range(n, self.rank, self.world)
        self._share.value = (hi - lo) / n
        self._global = (n, yb.numel())
        if self.rank > 0:
            torch.manual_seed(((self.seed * 1_000_003 + self.rank) * 1_000_003 + step) % 2**63)
        return xb[lo:hi], yb[lo:hi]

    def close(self) -> None:
        """Let go of the DDP wrapper (and its reducer); the shard trains no more."""
        self.ddp = None

    def agree(self, trainer: Trainer, cancelled: bool, step: bool) -> bool:
        """All ranks' answer to "stop?" after an event (one all-reduce): True when any rank cancelled the fit.

        After the backward pass (``step``) the same all-reduce sums the batch's
        loss and right answers into ``batch_sums`` (global rows, global targets,
        loss sum, right answers); after an epoch it makes ``trainer.should_stop``
        true everywhere when it is true on any rank.
        """
        if step:
            right = (trainer.output.detach().argmax(1) == trainer.yb).sum().double()
            flag = torch.tensor(float(cancelled), dtype=torch.float64, device=right.device)
            numbers = torch.stack([flag, summed_over_rows(trainer.loss_fn, trainer.loss, len(trainer.yb)), right]).to(_device())
        else:
            numbers = torch.tensor([float(cancelled), float(trainer.should_stop)], dtype=torch.float64,
                                   device=_device())
        dist.all_reduce(numbers)
        if step:
            self.batch_sums = (*self._global, numbers[1], numbers[2].long())
            return numbers[0].item() > 0  # the one read back of the step
        stop, should_stop = numbers.tolist()
        trainer.should_stop = trainer.should_stop or should_stop > 0
        return stop > 0

    def sync_buffers(self) -> None:
        """Rank 0's buffers (batch-norm statistics) on every rank."""
        for buffer in self.model.buffers():
            dist.broadcast(buffer, src=0)

    def evaluate(self, model: nn.Module, split: Split, loss_fn: Any, batch_size: int = 4096,
                 return_predictions: bool = False) -> dict[str, Any]:
        """:func:`~trainwell.loop.trainer.evaluate` of the whole ``split``, each rank on its own rows:
        every row counted once (no padding), the sums all-reduced; the predictions gathered in row order."""
        if model is self.model:
            self.sync_buffers()
        lo, hi = shard_range(len(split), self.rank, self.world)
        mine = Split(split.x[lo:hi], split.y[lo:hi])
        result = evaluate(model, mine, loss_fn, batch_size, return_predictions, reduce=self._sum)
        if return_predictions:
            result["predictions"] = self._gather_rows(result["predictions"], len(split))
        return result

    def _sum(self, numbers: torch.Tensor) -> torch.Tensor:
        out = numbers.to(_device())
        dist.all_reduce(out)
        return out.to(numbers.device)

    def _gather_rows(self, rows: torch.Tensor, n: int) -> torch.Tensor:
        """Each rank's rows (of ``shard_range``'s sizes), all ranks' in rank order: the whole ``n`` rows."""
        longest = -(-n // self.world)
        padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=_device())
        padded[:len(rows)] = rows.to(padded.device)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        sizes = [hi - lo for lo, hi in (shard_range(n, r, self.world) for r in range(self.world))]
        return torch.cat([p[:size].to(rows.device) for p, size in zip(parts, sizes)])
