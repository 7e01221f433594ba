"""Training runs in worker processes, for cross-validation, ensembles and tuning.

Workers are processes (``jobs``); each gets ``cores // jobs`` torch threads so
that workers share the cores instead of fighting over them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from trainwell.config import Config, apply_overrides, resolve_config
from trainwell.data import Data
from trainwell.runs import configured_data, evaluate_run, new_run_dir, train
from trainwell.runs.prepare import record_data

__all__ = ["ENSEMBLE_FILE", "finish_ensemble", "out_dir", "run_all", "run_one", "setup", "threads_for"]

ENSEMBLE_FILE = "ensemble.json"


def threads_for(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def run_one(task: tuple[dict[str, Any], list[str], str, Data, int]) -> dict[str, Any]:
    """One training run in a worker (or in this process): returns what the parent needs."""
    config, overrides, out, data, threads = task
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run = train(config, overrides=overrides, out=out, data=data, progress=False)
    finally:
        torch.set_num_threads(previous)
    epoch = run.metrics["best_epoch"]  # the lowest validation loss, as every run reports it
    best = run.history[epoch - 1] if epoch is not None else {}
    return {"dir": str(run.dir), "best_epoch": epoch, "best_val_loss": best.get("val_loss"),
            "best_val_accuracy": best.get("val_accuracy"), "metrics": run.metrics}


def run_all(tasks: list[tuple], jobs: int) -> list[dict[str, Any]]:
    if jobs <= 1:
        return [run_one(t) for t in tasks]
    # fork starts in milliseconds with everything imported, and is safe when each worker runs one torch thread
    # (as DataLoader's workers do); with more threads per worker, spawn avoids inheriting OpenMP's state
    method = "fork" if threads_for(jobs) == 1 and "fork" in _start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context(method)) as pool:
        return list(pool.map(run_one, tasks))


def _start_methods() -> list[str]:
    from multiprocessing import get_all_start_methods

    return get_all_start_methods()


def setup(config: Any, overrides: Sequence[str]) -> tuple[Config, Data]:
    """The resolved config and its data set; a ``data.path`` file is checked and recorded as a run records it
    (absolute path, sha256, shape: :func:`~trainwell.runs.prepare.record_data`) before anything is written."""
    cfg = resolve_config(config)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    cfg = record_data(cfg)
    return cfg, configured_data(cfg.data)


def finish_ensemble(root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write ``ensemble.json`` (the directory now loads as one model), score the test split, write it again."""
    (root / ENSEMBLE_FILE).write_text(json.dumps(spec, indent=2))
    spec["test"] = evaluate_run(root)
    (root / ENSEMBLE_FILE).write_text(json.dumps(spec, indent=2))
    spec["dir"] = str(root)
    return spec


def out_dir(out: str | Path | None, kind: str, name: str) -> Path:
    """The directory of a selection (``runs/<timestamp>-<name>-<kind>`` by default)."""
    return new_run_dir(out, f"{name}-{kind}")
