"""Data-parallel training (trainwell.loop.distributed): 2 processes on gloo give the 1-process run.

The processes are spawned here (torch.multiprocessing, one thread each) and meet
on a free loopback port; each writes what it ended with to a file.
"""

import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
import _ddp_worker  # noqa: E402

from trainwell.loop.distributed import check_batches, shard_range  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(tmp_path: Path, world: int = 2, **kwargs) -> list[dict]:
    mp.spawn(_ddp_worker.worker, args=(free_port(), str(tmp_path), world, kwargs), nprocs=world)
    return [torch.load(tmp_path / f"rank-{r}.pt", weights_only=False) for r in range(world)]


def single(**kwargs) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _ddp_worker.fit(False, **kwargs)
    finally:
        torch.set_num_threads(threads)


def assert_same_params(a: list[torch.Tensor], b: list[torch.Tensor], atol: float) -> None:
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p, q, atol=atol, rtol=0)


def test_shard_range_covers_each_row_once():
    for n in range(0, 40):
        for world in (1, 2, 3, 5):
            rows = [i for r in range(world) for i in range(*shard_range(n, r, world))]
            assert rows == list(range(n))
            sizes = [hi - lo for lo, hi in (shard_range(n, r, world) for r in range(world))]
            assert max(sizes) - min(sizes) <= 1


def test_check_batches_refuses_a_batch_a_rank_would_miss():
    assert check_batches(200, 32, 2) is None
    assert "last batch has 1 row" in check_batches(193, 32, 2)
    assert "data.batch_size >= 3" in check_batches(200, 2, 3)
    assert check_batches(10, 64, 2) is None  # full batch: 10 rows, 5 each


KW = dict(epochs=3, batch_size=32, optimizer="adam", cancel=None, rows=203)


def test_two_processes_train_the_one_process_run(tmp_path):
    """203 rows at batch 32: 7 batches an epoch, the last of 11 rows split 5/6; Adam, 3 epochs (21 updates)."""
    one = single(**KW)
    ranks = run_ranks(tmp_path, **KW)
    for r in ranks:
        assert r["step"] == one["step"] == 21
        assert_same_params(r["params"], one["params"], atol=1e-5)
        for h, g in zip(r["history"], one["history"], strict=True):
            assert h["val_accuracy"] == g["val_accuracy"]
            assert h["train_loss"] == pytest.approx(g["train_loss"], rel=1e-5)
            assert h["val_loss"] == pytest.approx(g["val_loss"], rel=1e-5)
    # the ranks hold the same weights, bit for bit (the same all-reduced gradient)
    assert_same_params(ranks[0]["params"], ranks[1]["params"], atol=0)
    assert ranks[0]["history"] == [{**h, "seconds": ranks[0]["history"][i]["seconds"]}
                                   for i, h in enumerate(ranks[1]["history"])]


def test_sharded_evaluation_counts_each_row_once(tmp_path):
    """Odd-sized splits (5 rows: 2 + 3; 1 row: 0 + 1) evaluated in shards equal the one-process evaluation."""
    ranks = run_ranks(tmp_path, **{**KW, "epochs": 1})
    for r in ranks:
        for name, e in r["evals"].items():
            ours, plain = e["ours"], e["plain"]
            assert torch.equal(ours["predictions"], plain["predictions"]), name
            assert ours["accuracy"] == plain["accuracy"], name
            assert ours["loss"] == pytest.approx(plain["loss"], rel=1e-6), name  # float32 batch means


def test_a_cancel_on_one_rank_stops_every_rank_before_the_update(tmp_path):
    """Rank 1 alone cancels after the backward pass that follows update 9 (as the doctor does on a NaN loss):
    both ranks stop there, before the update, with the weights of a one-process run cancelled there."""
    kw = {**KW, "optimizer": "sgd", "cancel": (1, 9)}
    ranks = run_ranks(tmp_path, **kw)
    one = single(**{**kw, "cancel": (0, 9)})
    assert [r["step"] for r in ranks] == [9, 9] and one["step"] == 9
    assert [r["epoch"] for r in ranks] == [1, 1]  # the fit ended inside epoch 2
    for r in ranks:
        assert_same_params(r["params"], one["params"], atol=1e-5)
