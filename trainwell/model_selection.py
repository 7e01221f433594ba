"""Model selection (seed 003): k-fold cross-validation and ensembles, in parallel worker processes.

* :func:`cross_validate` splits the non-test rows into K stratified folds,
  trains on K-1 and validates on the one left out, and reports each fold's
  best epoch and score, their mean and spread, and the epoch count to use:
  the mean of the best epochs. With ``final_fit`` it then trains on all
  non-test rows for that many epochs and scores the test split once.
* :func:`train_ensemble` trains N members that differ in seed (and, by
  choice, in init or any config key; with ``bagging`` in a bootstrap sample
  of the rows) and combines them by averaging probabilities or by vote. An
  ensemble's directory loads like a single model (``load_model``,
  ``trainwell evaluate``).

Workers are processes (``jobs``); each gets ``cores // jobs`` torch threads so
that workers share the cores instead of fighting over them.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwell.config import Config, apply_overrides, resolve_config
from trainwell.data.datasets import Data, Split
from trainwell.errors import TrainwellError

__all__ = ["Ensemble", "balance_cascade", "boost", "cross_validate", "fold_indices", "train_ensemble"]

ENSEMBLE_FILE = "ensemble.json"
_INITS = ("he_normal", "xavier_normal", "orthogonal", "he_uniform", "xavier_uniform", "default")


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


def _threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def _work(task: tuple[dict[str, Any], list[str], str, Data, int]) -> dict[str, Any]:
    """One training run in a worker (or in this process): returns what the parent needs."""
    config, overrides, out, data, threads = task
    from trainwell.train.run import train

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


def _run_all(tasks: list[tuple], jobs: int) -> list[dict[str, Any]]:
    if jobs <= 1:
        return [_work(t) for t in tasks]
    # fork starts in milliseconds with everything imported, and is safe when each worker runs one torch thread
    # (as DataLoader's workers do); with more threads per worker, spawn avoids inheriting OpenMP's state
    method = "fork" if _threads(jobs) == 1 and "fork" in _start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context(method)) as pool:
        return list(pool.map(_work, tasks))


def _start_methods() -> list[str]:
    from multiprocessing import get_all_start_methods

    return get_all_start_methods()


def _setup(config: Any, overrides: Sequence[str]) -> tuple[Config, Data]:
    """The resolved config and its data set."""
    from trainwell.train.run import _data

    cfg = resolve_config(config)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg, _data(cfg.data)


def _finish(root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write ``ensemble.json`` (the directory now loads as one model), score the test split, write it again."""
    from trainwell.train.run import evaluate_run

    (root / ENSEMBLE_FILE).write_text(json.dumps(spec, indent=2))
    spec["test"] = evaluate_run(root)
    (root / ENSEMBLE_FILE).write_text(json.dumps(spec, indent=2))
    spec["dir"] = str(root)
    return spec


def _out(out: str | Path | None, kind: str, name: str) -> Path:
    from trainwell.train.run import _new_run_dir

    return _new_run_dir(out, f"{name}-{kind}")


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
    cfg, data = _setup(config, overrides)
    if data.kind == "sequence":
        raise TrainwellError("cross-validation stratifies by class; sequence tasks have a class per token")
    pool_x = torch.cat([data.train.x, data.val.x])
    pool_y = torch.cat([data.train.y, data.val.y])
    splits = fold_indices(pool_y.numpy(), folds, cfg.data.seed)
    root = _out(out, "cv", cfg.run_name)  # only now: bad input writes nothing
    tasks = []
    for k, (train_idx, val_idx) in enumerate(splits):
        fold = replace(data, train=Split(pool_x[train_idx], pool_y[train_idx]),
                       val=Split(pool_x[val_idx], pool_y[val_idx]))
        tasks.append((cfg.model_dump(mode="json"), [], str(root / f"fold-{k}"), fold, _threads(jobs)))
    results = _run_all(tasks, jobs)
    keys = ("best_epoch", "best_val_loss", "best_val_accuracy")
    summary: dict[str, Any] = {
        "folds": [{"fold": k, "dir": r["dir"], **{key: r[key] for key in keys}} for k, r in enumerate(results)],
        "mean": {key: statistics.mean(r[key] for r in results) for key in keys},
        "std": {key: statistics.pstdev(r[key] for r in results) for key in keys}}
    summary["chosen_epochs"] = max(1, round(summary["mean"]["best_epoch"]))
    if final_fit:
        whole = replace(data, train=Split(pool_x, pool_y), val=Split(pool_x[:0], pool_y[:0]))
        final = _work((cfg.model_dump(mode="json"), [f"train.epochs={summary['chosen_epochs']}"],
                       str(root / "final"), whole, _threads(1)))
        summary["final"] = {"dir": final["dir"], "test": final["metrics"]["test"]}
    (root / "cv.json").write_text(json.dumps(summary, indent=2))
    summary["dir"] = str(root)
    return summary


def _member_overrides(i: int, vary: Sequence[str], seed: int) -> list[str]:
    changes = [f"seed={seed + i}"]
    for item in vary:
        if item == "seed":
            continue
        if item == "init":
            changes.append(f"model.init={_INITS[i % len(_INITS)]}")
        elif "=" in item:
            key, values = item.split("=", 1)
            options = values.split(",")
            changes.append(f"{key}={options[i % len(options)]}")
        else:
            raise TrainwellError(f"--vary takes seed, init or key=v1,v2,... (e.g. model.width=64,128), got {item!r}")
    return changes


def train_ensemble(config: Any = None, *, members: int = 5, vary: Sequence[str] = ("seed",),
                   combine: str = "average", bagging: bool = False, balance: bool = False,
                   overrides: Sequence[str] = (), jobs: int = 1, out: str | Path | None = None) -> dict[str, Any]:
    """Train ``members`` runs and combine them (seed 003's ensembles).

    With ``balance`` every member trains on its own random under-sample of the
    training rows with all classes as large as the smallest: EasyEnsemble
    (Liu et al. 2009).

    Returns:
        The content of ``ensemble.json``: members (directory, changes, test
        accuracy), ``combine``, and the ensemble's test metrics.
    """
    if combine not in ("average", "vote"):
        raise TrainwellError(f"--combine takes average or vote, got {combine!r}")
    if members < 2:
        raise TrainwellError(f"an ensemble needs --members >= 2, got {members}")
    cfg, data = _setup(config, overrides)
    changes = [_member_overrides(i, vary, cfg.seed) for i in range(members)]
    for c in changes:
        apply_overrides(cfg, c)  # a bad --vary value is an error before anything is written
    root = _out(out, "ensemble", cfg.run_name)
    tasks = []
    for i in range(members):
        member_data = data
        if bagging:  # a bootstrap sample of the training rows per member
            g = torch.Generator().manual_seed(cfg.seed + 1000 + i)
            rows = torch.randint(0, len(data.train), (len(data.train),), generator=g)
            member_data = replace(data, train=Split(data.train.x[rows], data.train.y[rows]))
        if balance:
            member_data = _under_sampled(member_data, cfg.seed + 2000 + i)
        tasks.append((cfg.model_dump(mode="json"), changes[i], str(root / f"member-{i}"),
                      member_data, _threads(jobs)))
    results = _run_all(tasks, jobs)
    spec = {"combine": combine, "bagging": bagging, "balance": balance,
            "members": [{"dir": Path(r["dir"]).name, "changes": t[1],
                         "test_accuracy": r["metrics"]["test"]["accuracy"]} for r, t in zip(results, tasks)]}
    return _finish(root, spec)


def _under_sampled(data: Data, seed: int, rows: np.ndarray | None = None) -> Data:
    """The training split under-sampled to the smallest class (from ``rows`` only, when given)."""
    from trainwell.data.imbalance import RandomUnderSampler

    idx = np.arange(len(data.train)) if rows is None else rows
    sampler = RandomUnderSampler(random_state=seed)
    sampler.fit_resample(np.zeros((len(idx), 1)), data.train.y[idx].numpy())
    keep = torch.as_tensor(idx[sampler.sample_indices_])
    return replace(data, train=Split(data.train.x[keep], data.train.y[keep]))


def balance_cascade(config: Any = None, *, rounds: int = 4, overrides: Sequence[str] = (),
                    out: str | Path | None = None) -> dict[str, Any]:
    """BalanceCascade (Liu et al. 2009; removed from imbalanced-learn): an ensemble grown round by round.

    Each round trains a member on all rows of the smallest class and as many
    random rows of every other class, drawn from those still in the pool;
    then the rows of the larger classes that the ensemble so far already
    classifies right leave the pool, so later members learn the hard ones.
    The result is saved and loads like :func:`train_ensemble`'s (average).
    """
    if rounds < 2:
        raise TrainwellError(f"BalanceCascade needs rounds >= 2, got {rounds}")
    cfg, data = _setup(config, overrides)
    y = data.train.y.numpy()
    counts = np.bincount(y)
    smallest = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
    pool = np.arange(len(y))
    root = _out(out, "cascade", cfg.run_name)
    models, spec_members = [], []
    for i in range(rounds):
        member_data = _under_sampled(data, cfg.seed + 3000 + i, pool)
        result = _work((cfg.model_dump(mode="json"), [f"seed={cfg.seed + i}"], str(root / f"member-{i}"), member_data,
                        _threads(1)))
        spec_members.append({"dir": Path(result["dir"]).name, "changes": [f"seed={cfg.seed + i}"],
                             "test_accuracy": result["metrics"]["test"]["accuracy"], "pool_rows": int(len(pool))})
        from trainwell.train.run import load_model

        models.append(load_model(result["dir"]))
        with torch.no_grad():
            pred = Ensemble(models)(data.train.x[pool]).argmax(1).numpy()
        right = (pred == y[pool]) & (y[pool] != smallest)
        rng = np.random.default_rng(cfg.seed + 4000 + i)
        kept = [pool[~right]]
        for c in np.flatnonzero(counts):  # every class keeps at least the smallest class's size, for a balanced draw
            short = counts[smallest] - int(((y[pool] == c) & ~right).sum())
            if c != smallest and short > 0:
                kept.append(rng.choice(pool[(y[pool] == c) & right], size=short, replace=False))
        pool = np.sort(np.concatenate(kept))
    spec = {"combine": "average", "bagging": False, "balance": "cascade", "members": spec_members}
    return _finish(root, spec)


def boost(config: Any = None, *, rounds: int = 5, overrides: Sequence[str] = (),
          out: str | Path | None = None) -> dict[str, Any]:
    """SAMME boosting (Zhu et al. 2009) with neural base learners.

    Each round trains a member on rows drawn with the current row weights (a
    network takes no sample weights, so they become a weighted resample),
    measures its weighted error ``err`` on the training rows, gives it the say
    ``alpha = log((1 - err) / err) + log(K - 1)``, and multiplies the weights of
    the rows it got wrong by ``exp(alpha)``. The ensemble votes with the alphas.
    Rounds stop early when a member is no better than chance (``err >= 1 - 1/K``).
    """
    from trainwell.train.run import load_model

    if rounds < 1:
        raise TrainwellError(f"boosting needs rounds >= 1, got {rounds}")
    cfg, data = _setup(config, overrides)
    n, k = len(data.train), data.n_classes
    w = torch.full((n,), 1.0 / n, dtype=torch.double)
    root = _out(out, "boost", cfg.run_name)
    members, alphas = [], []
    for m in range(rounds):
        g = torch.Generator().manual_seed(cfg.seed + 5000 + m)
        rows = torch.multinomial(w, n, replacement=True, generator=g)
        member_data = replace(data, train=Split(data.train.x[rows], data.train.y[rows]))
        result = _work((cfg.model_dump(mode="json"), [f"seed={cfg.seed + m}"], str(root / f"member-{m}"),
                        member_data, _threads(1)))
        with torch.no_grad():
            wrong = (load_model(result["dir"])(data.train.x).argmax(1) != data.train.y).double()
        err = float((w * wrong).sum() / w.sum())
        if err >= 1 - 1 / k:  # no better than chance: this member gets no say, and boosting stops
            break
        alpha = math.log((1 - err) / max(err, 1e-10)) + math.log(k - 1)
        members.append({"dir": Path(result["dir"]).name, "changes": [f"seed={cfg.seed + m}"],
                        "test_accuracy": result["metrics"]["test"]["accuracy"], "weighted_error": err,
                        "alpha": alpha})
        alphas.append(alpha)
        w = w * torch.exp(alpha * wrong)
        w = w / w.sum()
    if not members:
        raise TrainwellError("the first boosting round was no better than chance; fix the base learner first")
    spec = {"combine": "weighted_vote", "weights": alphas, "members": members}
    return _finish(root, spec)


class Ensemble(nn.Module):
    """Members combined: ``average`` returns the log of the mean probabilities; ``vote`` (or
    ``weighted_vote`` with one weight per member) the log of the vote shares (ties go to the lower class),
    so ``argmax`` is the ensemble's prediction either way."""

    def __init__(self, members: Sequence[nn.Module], combine: str = "average",
                 weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.register_buffer("weights", torch.ones(len(members)) if weights is None
                             else torch.as_tensor(list(weights), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = [m(x) for m in self.members]
        if self.combine == "average":
            return torch.stack([torch.softmax(z, dim=1) for z in logits]).mean(0).clamp_min(1e-12).log()
        votes = torch.stack([nn.functional.one_hot(z.argmax(1), z.shape[1]) for z in logits]).float()
        share = (votes * self.weights.view(-1, 1, 1)).sum(0) / self.weights.sum()
        return share.clamp_min(1e-12).log()
