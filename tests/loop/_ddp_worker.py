"""The processes of tests/loop/test_distributed.py: one data-parallel fit per rank (gloo, CPU, one thread).

Each worker writes what it ended with (parameters, history, steps, evaluations) to OUT/rank-R.pt.
"""

import os

import torch
import torch.distributed as dist
from torch import nn

from trainwell.data.datasets import Split, load_data
from trainwell.loop import Callback, CancelFit, Trainer, evaluate
from trainwell.loop.distributed import Shard, leave


def setup(rows: int = 203, seed: int = 0):
    """The same model, optimizer and data in every process: moons, a small MLP."""
    torch.manual_seed(seed)
    data = load_data("moons", n_samples=rows * 5 // 3 + 1, val_fraction=0.2, test_fraction=0.2)
    train = Split(data.train.x[:rows], data.train.y[:rows])
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(0.0), nn.Linear(16, 2))
    return model, train, data.val, data.test


class CancelOnRank(Callback):
    """Cancels the fit after the backward pass of update ``step`` on one rank only."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step

    def on_after_backward(self, trainer) -> None:
        if (dist.get_rank() if dist.is_initialized() else 0) == self.rank and trainer.step == self.step:
            raise CancelFit


def fit(shard_on: bool, epochs: int, batch_size: int, optimizer: str, cancel: tuple[int, int] | None,
        rows: int) -> dict:
    model, train, val, test = setup(rows)
    opt = (torch.optim.Adam(model.parameters(), lr=0.01) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9))
    shard = Shard(model, seed=0) if shard_on else None
    callbacks = [CancelOnRank(*cancel)] if cancel else []
    trainer = Trainer(model, opt, nn.functional.cross_entropy, train, val, epochs=epochs, batch_size=batch_size,
                      generator=torch.Generator().manual_seed(1), shard=shard, callbacks=callbacks,
                      forward=shard.forward(None) if shard else None)
    history = trainer.fit()
    # the sharded evaluation of odd-sized splits (each row once), beside the plain one of the same model
    evals = {}
    for name, split in (("val", val), ("test", test), ("five", Split(test.x[:5], test.y[:5])),
                        ("one", Split(test.x[:1], test.y[:1]))):
        ours = (shard.evaluate if shard else evaluate)(model, split, nn.functional.cross_entropy,
                                                      return_predictions=True, batch_size=7)
        plain = evaluate(model, split, nn.functional.cross_entropy, return_predictions=True)
        evals[name] = {"ours": ours, "plain": plain}
    return {"params": [p.detach().clone() for p in model.parameters()], "history": history,
            "step": trainer.step, "epoch": trainer.epoch, "evals": evals}


def worker(rank: int, port: int, out: str, world: int, kwargs: dict) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(fit(True, **kwargs), os.path.join(out, f"rank-{rank}.pt"))
    finally:
        leave()
