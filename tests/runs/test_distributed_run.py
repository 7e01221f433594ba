"""``trainwell train --nproc 2`` and trainwell.train() under torchrun (gloo, CPU, one thread a process).

What a data-parallel run must do: train the one-process run, write its files
once (rank 0), refuse what it cannot train in one line, stop every rank on a
NaN of one, and resume from its checkpoint as if never stopped.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import trainwell
from trainwell.cli import main

SCRIPT = Path(__file__).with_name("_ddp_train.py")
# 147 training rows at batch 32: 5 batches an epoch, the last of 19 rows (9 + 10); 37 validation rows (18 + 19)
CONFIG = {"seed": 3, "data": {"name": "moons", "n_samples": 230, "batch_size": 32},
          "model": {"name": "mlp", "depth": 2, "width": 16, "dropout": 0.0}, "optim": {"name": "adam", "lr": 0.01},
          "train": {"epochs": 4, "progress": False}, "checkpoint": {"every_steps": 4, "keep": 10}}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(out: Path, mode: str = "none", n: int = 0, config: dict = CONFIG) -> subprocess.CompletedProcess:
    """The script on 2 processes under torchrun (a standalone rendezvous: a free loopback port)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(SCRIPT), json.dumps(config), str(out), mode, str(n)],
                          capture_output=True, text=True, env=ENV, timeout=300)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainwell", "train", *args], capture_output=True, text=True,
                          env=ENV, timeout=300)


def one_process(out: Path, config: dict = CONFIG) -> trainwell.Run:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return trainwell.train(config, out=out)
    finally:
        torch.set_num_threads(threads)


def assert_same_model(a: Path, b: Path, atol: float) -> None:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert x.keys() == y.keys()
    for key in x:
        torch.testing.assert_close(x[key], y[key], atol=atol, rtol=0)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_nproc_2_trains_the_one_process_run_and_writes_it_once(tmp_path):
    (tmp_path / "c.yaml").write_text(json.dumps(CONFIG))  # JSON is YAML
    proc = cli(str(tmp_path / "c.yaml"), "--nproc", "2", "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("final metrics") == 1 and proc.stdout.count("run directory:") == 1  # rank 0 alone
    one = one_process(tmp_path / "one")
    two = tmp_path / "two"
    assert_same_model(one.dir, two, atol=1e-5)
    metrics = json.loads((two / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        assert metrics[split]["accuracy"] == one.metrics[split]["accuracy"]
        assert metrics[split]["loss"] == pytest.approx(one.metrics[split]["loss"], rel=1e-5)
    assert metrics["val"]["confusion_matrix"] == one.metrics["val"]["confusion_matrix"]  # each row once: 37
    history = lines(two / "history.jsonl")
    assert [h["step"] for h in history] == [h["step"] for h in one.history] == [5, 10, 15, 20]
    for h, g in zip(history, one.history):
        assert h["val_accuracy"] == g["val_accuracy"] and h["train_accuracy"] == g["train_accuracy"]
        assert h["train_loss"] == pytest.approx(g["train_loss"], rel=1e-5)
    assert sorted(os.listdir(two / "checkpoints")) == sorted(os.listdir(one.dir / "checkpoints"))
    assert sorted(os.listdir(two)) == sorted(os.listdir(one.dir))


def test_nproc_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    for args, words in [(["--nproc", "0"], "--nproc takes a number of processes >= 1, got 0"),
                        (["--nproc", "2", "--set", "model.width=0"], "model.width")]:
        monkeypatch.setattr(sys, "argv", ["trainwell", "train", *args, "--out", str(tmp_path / "run")])
        with pytest.raises(SystemExit) as info:
            main()
        err = capsys.readouterr().err
        assert info.value.code == 2 and words in err and err.count("\n") == 1, err
        assert not (tmp_path / "run").exists()


def test_what_two_processes_cannot_train_is_one_line_from_rank_0(tmp_path):
    proc = cli("--set", "data.name=moons", "--set", "data.n_samples=230", "--set", "optim.name=lbfgs",
               "--nproc", "2", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: optim.name=lbfgs re-evaluates the loss within a step, which each of "
                                   "the 2 processes would do on its own rows; train it on one process")
    assert not (tmp_path / "run").exists()


def test_a_nan_on_one_rank_stops_both_before_the_update(tmp_path):
    """Rank 1 alone gets a NaN loss at update 7: both ranks stop there; rank 0 reports rank 1's finding and
    keeps the last finite weights."""
    proc = torchrun(tmp_path / "run", "poison", 7)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed"
    assert result["metrics"]["stopped"] == {"epoch": 2, "step": 7, "reason": "nan loss (log of zero)"}
    nan = [f for f in result["findings"] if f["symptom"] == "nan_loss"]
    assert len(nan) == 1 and nan[0]["evidence"]["rank"] == 1 and nan[0]["step"] == 7
    weights = load_file(tmp_path / "run" / "model.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())
    assert len(lines(tmp_path / "run" / "history.jsonl")) == 1


def _killed_then_resumed(tmp_path: Path) -> Path:
    """A 2-process run SIGKILLed after update 11 (checkpoints at 4 and 8), then resumed on 2 processes."""
    run = tmp_path / "run"
    proc = torchrun(run, "kill", 11)
    assert proc.returncode != 0
    assert not (run / "metrics.json").exists()
    assert "step-000000008.safetensors" in os.listdir(run / "checkpoints")
    proc = cli("--resume", str(run), "--nproc", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert [h["step"] for h in lines(run / "history.jsonl")] == [5, 10, 15, 20]
    return run


def test_a_killed_two_process_run_resumes_to_the_one_process_run(tmp_path):
    run = _killed_then_resumed(tmp_path)
    assert_same_model(run, one_process(tmp_path / "one").dir, atol=1e-5)


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_to_the_uninterrupted_two_process_run(tmp_path):
    run = _killed_then_resumed(tmp_path)
    proc = torchrun(tmp_path / "whole")
    assert proc.returncode == 0, proc.stderr
    assert_same_model(run, tmp_path / "whole", atol=0)
    assert lines(run / "history.jsonl") == [{**h, "seconds": g["seconds"]} for h, g in
                                            zip(lines(tmp_path / "whole" / "history.jsonl"),
                                                lines(run / "history.jsonl"))]
