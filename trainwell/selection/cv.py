"""K-fold cross-validation (seed 003): the mean best epoch of K folds chooses the epoch count.

:func:`cross_validate` splits the non-test rows into K stratified folds,
trains on K-1 and validates on the one left out, and reports each fold's
best epoch and score, their mean and spread, and the epoch count to use:
the mean of the best epochs. With ``final_fit`` it then trains on all
non-test rows for that many epochs and scores the test split once.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainwell.data import Split
from trainwell.errors import TrainwellError
from trainwell.selection.workers import out_dir, run_all, run_one, setup, threads_for

__all__ = ["cross_validate", "fold_indices"]


def fold_indices(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold ``(train, validation)`` row indices (scikit-learn's ``StratifiedKFold``, shuffled).

    Raises:
        TrainwellError: fewer rows of a class than folds, naming the class counts.
    """
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise TrainwellError(f"cross-validation needs --folds >= 2, got {folds}")
    counts = dict(zip(*np.unique(y, return_counts=True)))
    if min(counts.values()) < folds:
        raise TrainwellError(f"stratified {folds}-fold needs at least {folds} rows of every class, got class counts "
                             f"{ {int(k): int(v) for k, v in counts.items()} }; use fewer folds or more data")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def cross_validate(config: Any = None, *, folds: int = 5, overrides: Sequence[str] = (), jobs: int = 1,
                   out: str | Path | None = None, final_fit: bool = False) -> dict[str, Any]:
    """K-fold cross-validation of a config on its data set's non-test rows.

    Args:
        config: a config (anything :func:`~trainwell.train` takes).
        folds: K.
        overrides: ``key=value`` changes.
        jobs: worker processes.
        out: the directory for ``fold-k/`` runs and ``cv.json``.
        final_fit: also train on all non-test rows for the chosen epoch count.

    Returns:
        The content of ``cv.json``: ``folds`` (best epoch, validation loss and
        accuracy each), ``mean`` and ``std`` of those, ``chosen_epochs`` and,
        with ``final_fit``, ``final`` (its directory and test metrics).
    """
    cfg, data = setup(config, overrides)
    if data.kind == "sequence":
        raise TrainwellError("cross-validation stratifies by class; sequence tasks have a class per token")
    pool_x = torch.cat([data.train.x, data.val.x])
    pool_y = torch.cat([data.train.y, data.val.y])
    splits = fold_indices(pool_y.numpy(), folds, cfg.data.seed)
    root = out_dir(out, "cv", cfg.run_name)  # only now: bad input writes nothing
    tasks = []
    for k, (train_idx, val_idx) in enumerate(splits):
        fold = replace(data, train=Split(pool_x[train_idx], pool_y[train_idx]),
                       val=Split(pool_x[val_idx], pool_y[val_idx]))
        tasks.append((cfg.model_dump(mode="json"), [], str(root / f"fold-{k}"), fold, threads_for(jobs)))
    results = run_all(tasks, jobs)
    keys = ("best_epoch", "best_val_loss", "best_val_accuracy")
    summary: dict[str, Any] = {
        "folds": [{"fold": k, "dir": r["dir"], **{key: r[key] for key in keys}} for k, r in enumerate(results)],
        "mean": {key: statistics.mean(r[key] for r in results) for key in keys},
        "std": {key: statistics.pstdev(r[key] for r in results) for key in keys}}
    summary["chosen_epochs"] = max(1, round(summary["mean"]["best_epoch"]))
    if final_fit:
        whole = replace(data, train=Split(pool_x, pool_y), val=Split(pool_x[:0], pool_y[:0]))
        final = run_one((cfg.model_dump(mode="json"), [f"train.epochs={summary['chosen_epochs']}"],
                       str(root / "final"), whole, threads_for(1)))
        summary["final"] = {"dir": final["dir"], "test": final["metrics"]["test"]}
    (root / "cv.json").write_text(json.dumps(summary, indent=2))
    summary["dir"] = str(root)
    return summary
