"""Hyper-parameter search (seed 001: hyper-parameters are chosen on validation) on Optuna.

:func:`tune` searches a :mod:`~trainwell.selection.space` around a base
config. Every trial is an ordinary run directory (``trial-N/``) trained by
:func:`trainwell.train` and scored on the validation split only: its best
epoch's ``val_accuracy`` (maximised) or ``val_loss`` (minimised); the test
split never chooses.

A trial stops early, and ends *pruned*, when

* Optuna's pruner (median by default) finds its per-epoch validation metric
  worse than the median of earlier trials at the same epoch, or
* the doctor finds it sick: a warning or an error of the doctor while it
  trains (``learning_rate_too_high``, ``vanishing_gradients``, a NaN loss...),
  whose symptom, cause, epoch and step become the trial's user attributes.
  Overfitting does not prune (a trial is scored at its best epoch, before it
  overfits). Trials run with ``doctor.repair=false``: a repaired trial would
  score another config than the one the sampler chose.

Workers are processes (``jobs``) on this host, each with
``torch.set_num_threads(cores // jobs)``; the same command on other hosts
with the same ``storage`` joins the study. :mod:`~trainwell.selection.study`
keeps the count exact: a study ends with ``trials`` trials counted (complete,
pruned or failed), a worker killed mid-trial leaves its trial failed and
retried. Running the command again continues the study up to ``trials``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import torch

from trainwell.config import apply_overrides, resolve_config
from trainwell.doctor import DoctorCallback
from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text
from trainwell.loop import Callback, CancelFit
from trainwell.runs import train
from trainwell.runs.prepare import record_data
from trainwell.selection.space import Space, load_space
from trainwell.selection.study import Storage, StorageSpec, counted, require_optuna, storage_spec
from trainwell.selection.study_files import STUDY_FILE, read_marker, write_outputs
from trainwell.selection.workers import threads_for

try:
    import optuna
    from optuna.trial import TrialState
except ImportError:  # the `tune` extra
    optuna = None

__all__ = ["METRICS", "SAMPLERS", "TrialPruning", "tune"]

METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
NOT_PRUNING = ("overfitting",)  # scored at the best epoch, a trial that overfits later is not worse for it


class TrialPruning(Callback):
    """Reports each epoch's validation metric to an Optuna trial; stops the fit when the trial should stop.

    It raises :class:`~trainwell.loop.CancelFit` when the pruner says
    ``trial.should_prune()`` after an epoch, or as soon as the run's
    :class:`~trainwell.doctor.DoctorCallback` has a warning or an error (other
    than overfitting). ``reason`` then says why: ``{"pruned_by": "pruner"}``
    or the finding's ``symptom``, ``cause``, ``severity``, ``epoch`` and
    ``step``. The caller marks the trial pruned.

    Args:
        trial: the Optuna trial.
        metric: the history key reported (``val_accuracy`` or ``val_loss``).
    """

    def __init__(self, trial: Any, metric: str = "val_accuracy") -> None:
        self.trial, self.metric = trial, metric
        self.reason: dict[str, Any] | None = None
        self._doctor: DoctorCallback | None = None
        self._seen = 0

    def on_fit_start(self, trainer) -> None:
        self._doctor = next((cb for cb in trainer.callbacks if isinstance(cb, DoctorCallback)), None)

    def _sick(self) -> dict[str, Any] | None:
        if self.reason is not None or self._doctor is None or self._doctor.doctor is None:
            return None
        findings = self._doctor.doctor.findings
        new, self._seen = findings[self._seen:], len(findings)
        for f in new:
            if f.severity in ("warning", "error") and f.symptom not in NOT_PRUNING:
                return {"pruned_by": f.symptom, "symptom": f.symptom, "cause": f.cause or "",
                        "severity": f.severity, "epoch": f.epoch, "step": f.step}
        return None

    def on_batch_end(self, trainer) -> None:
        if (reason := self._sick()) is not None:
            self.reason = reason
            raise CancelFit

    def on_epoch_end(self, trainer) -> None:
        self.on_batch_end(trainer)
        value = trainer.logs.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), trainer.epoch)
        if self.trial.should_prune():
            self.reason = {"pruned_by": "pruner"}
            raise CancelFit

    def on_fit_end(self, trainer) -> None:  # a NaN loss: the doctor stopped the fit in the middle of a batch
        if self.reason is None:
            self.reason = self._sick()


@dataclass(frozen=True)
class Worker:
    """What one worker process needs (picklable)."""

    config: dict[str, Any]
    space: dict[str, Any]
    study: str
    storage: StorageSpec
    dir: str
    trials: int
    metric: str
    sampler: str
    pruner: str
    timeout: float | None
    threads: int
    seed: int


def _sampler(w: Worker, space: Space, offset: int) -> Any:
    seed = w.seed + offset  # workers and later sessions draw different points
    if w.sampler in ("random", "grid"):  # the grid's points are queued trials (see _queue_grid)
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(name: str) -> Any:
    return optuna.pruners.MedianPruner() if name == "median" else optuna.pruners.NopPruner()


def _score(history: list[dict[str, Any]], metric: str) -> float | None:
    values = [h[metric] for h in history if isinstance(h.get(metric), (int, float)) and math.isfinite(h[metric])]
    if not values:
        return None
    return max(values) if METRICS[metric] == "maximize" else min(values)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text and not isinstance(err, TrainwellError) else \
        (text[0] if text else type(err).__name__)


def _run_trial(w: Worker, study: Any, storage: Storage, trial: Any, base: Any, space: Space) -> None:
    """Train one trial and tell the study how it ended."""
    trial_id = storage.trial_id(study, trial.number)
    state, value, attrs = TrialState.FAIL, None, {}
    with storage.heartbeat(trial_id):
        try:
            changes = space.suggest(trial)
            attrs["changes"] = " ".join(changes)
            cfg = apply_overrides(base, [*changes, "doctor.repair=false"])
            pruning = TrialPruning(trial, w.metric)
            out = Path(w.dir) / f"trial-{trial.number}"
            attrs["dir"] = out.name
            run = train(cfg, out=out, progress=False, callbacks=[pruning])
            value = _score(run.history, w.metric)
            attrs.update(epochs=len(run.history), best_epoch=run.metrics.get("best_epoch"),
                         seconds=round(run.metrics.get("train_seconds", 0.0), 3))
            if pruning.reason is not None:
                state = TrialState.PRUNED
                attrs.update(pruning.reason)
            elif value is None:
                attrs["error"] = f"no finite {w.metric} in any epoch (is the validation split empty?)"
            else:
                state = TrialState.COMPLETE
        except (TrainwellError, ValueError, RuntimeError) as err:  # the trial's config: its failure, not the study's
            attrs["error"] = _one_line(err)
        except BaseException:  # interrupted: failed and queued again, so that running the command again runs it
            with contextlib.suppress(Exception):
                study.tell(trial, state=TrialState.FAIL)
                storage.requeue(study, trial_id)
            raise
    try:
        for key, v in attrs.items():
            trial.set_user_attr(key, v)
        if state is TrialState.COMPLETE:
            study.tell(trial, value)
        else:
            study.tell(trial, state=state)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another worker took this trial for lost (no heartbeat in time) and queued it again: the retry counts


def _claim(w: Worker, study: Any, storage: Storage) -> tuple[Any, bool]:
    """The next trial to run, or None; and whether other trials are still running (their worker may die)."""
    with storage.claim(w.study):
        storage.fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        running = any(t.state == TrialState.RUNNING for t in trials)
        if len(counted(trials)) >= w.trials and not waiting:
            return None, running
        with warnings.catch_warnings():  # "heartbeat ... with Study.optimize": this loop beats itself (study.py)
            warnings.simplefilter("ignore", UserWarning)
            trial = study.ask()
        trial_id = storage.trial_id(study, trial.number)
        storage.beat(trial_id)  # before the lock is released: a retry carries its original's last beat
        storage.optuna.set_trial_system_attr(trial_id, "trainwell_worker", f"{socket.gethostname()}:{os.getpid()}")
        return trial, running


def work(w: Worker, on_trial: Any = None) -> None:
    """A worker: claim trials of the study and run them until the study has ``w.trials`` (or the timeout).

    A worker whose budget is spent waits while other trials are running: if their worker dies, this one
    fails them and runs their retries, so the study ends complete.
    """
    storage = Storage(w.storage)
    base = resolve_config(w.config)
    space = load_space(w.space, base)
    offset = 7919 * (os.getpid() % 1000) + len(optuna.load_study(study_name=w.study, storage=storage.optuna).trials)
    study = optuna.load_study(study_name=w.study, storage=storage.optuna, sampler=_sampler(w, space, offset),
                              pruner=_pruner(w.pruner))
    started = time.monotonic()
    while w.timeout is None or time.monotonic() - started < w.timeout:
        trial, running = _claim(w, study, storage)
        if trial is None:
            if not running:
                return
            time.sleep(min(1.0, w.storage.heartbeat))
            continue
        _run_trial(w, study, storage, trial, base, space)
        if on_trial is not None:
            on_trial(study)


def _worker_main(w: Worker) -> None:
    """A worker process: its own thread count and quiet logs (the parent reports)."""
    torch.set_num_threads(w.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work(w)


@contextlib.contextmanager
def _quiet_optuna(threads: int | None = None):
    """In this process: Optuna's logs at warnings and (given) a worker's thread count, both restored after."""
    previous, verbosity = torch.get_num_threads(), optuna.logging.get_verbosity()
    if threads is not None:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        optuna.logging.set_verbosity(verbosity)


def _study_dir(out: str | Path | None, name: str) -> Path:
    """The study directory: ``out`` or ``runs/tune-<study>``; new, empty, or this study's own."""
    path = Path(out) if out is not None else Path("runs") / f"tune-{name}"
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        marker = read_marker(path)
        if marker is None:
            raise TrainwellError(f"--out {path} already exists and holds no study ({STUDY_FILE} is missing); "
                                 "choose a new directory (nothing was written)")
        if marker.get("study") != name:
            raise TrainwellError(f"{path} holds the study {marker.get('study')!r}, not {name!r}; "
                                 "use --study with its name, or another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrainwellError(f"cannot create the study directory {path}: {err.strerror}") from None
    return path


def _queue_grid(study: Any, storage: Storage, name: str, space: Space, trials: int) -> None:
    """Queue the grid's points that the study has not tried or queued yet, up to ``trials`` in all.

    Queued trials (Optuna's ``enqueue_trial``) are taken one by one by the workers, so no point runs
    twice, however many workers there are (Optuna's ``GridSampler`` may repeat a point across workers).
    """
    import itertools

    grid = space.grid()
    with storage.claim(name):
        have = counted(study.get_trials(deepcopy=False))
        seen = {tuple(sorted(t.params.items())) for t in have}
        seen |= {tuple(sorted(t.system_attrs.get("fixed_params", {}).items())) for t in have}
        room = trials - len(have)
        for point in itertools.product(*grid.values()):
            params = dict(zip(grid, point))
            if room <= 0:
                break
            if tuple(sorted(params.items())) not in seen:
                study.enqueue_trial(params)
                room -= 1


def _open_study(storage: Storage, name: str, metric: str, identity: dict[str, Any]) -> Any:
    """Create or load the study; refuse one started with another metric, space or base config."""
    spec = storage.spec
    study = optuna.create_study(study_name=name, storage=storage.optuna, direction=METRICS[metric],
                                load_if_exists=True)
    saved = study.user_attrs.get("trainwell")
    if saved is None:
        study.set_user_attr("trainwell", identity)
    elif saved != identity:
        what = [k for k in identity if saved.get(k) != identity[k]]
        raise TrainwellError(f"the study {name!r} in {spec.describe()} was started with another "
                             f"{' and '.join(what)}; use a new --study name to search this one")
    return study


def tune(config: Any = None, space: str | Path | dict[str, Any] | None = None, *, trials: int = 20, jobs: int = 1,
         storage: str | Path | None = None, study: str | None = None, sampler: str = "tpe",
         timeout: float | None = None, out: str | Path | None = None, metric: str = "val_accuracy",
         pruner: str = "median", overrides: Sequence[str] = (), heartbeat: int = 30,
         threads: int | None = None, progress: bool = False, plots: bool = True) -> dict[str, Any]:
    """Search hyper-parameters with Optuna; every trial an ordinary run directory.

    Args:
        config: the base config (anything :func:`~trainwell.train` takes).
        space: the search space, a YAML file or its mapping (see :mod:`~trainwell.selection.space`).
        trials: the study's total number of trials (complete, pruned or failed); a study that has some
            already runs only the rest.
        jobs: worker processes on this host.
        storage: None (``journal.log`` in the study directory), a journal file, or an RDB URL
            (``postgresql://user:password@host/db``) that workers on other machines share.
        study: the study's name (default: the config's ``run_name``).
        sampler: ``tpe``, ``random`` or ``grid`` (choice and int keys only; at most the grid's size of trials).
        timeout: seconds after which a worker takes no new trial (a trial running then finishes); a study
            that stops short of ``trials`` on it says so in its notes.
        out: the study directory (default ``runs/tune-<study>``, so that running again continues).
        metric: ``val_accuracy`` (best epoch's, maximised) or ``val_loss`` (minimised).
        pruner: ``median`` (Optuna's ``MedianPruner``) or ``none``; the doctor prunes either way.
        overrides: ``key=value`` changes to the base config.
        heartbeat: seconds between a running trial's heartbeats; a trial silent for 3x that is taken for lost.
        threads: torch threads per worker (default ``cores // jobs``).
        progress: a progress bar over the trials.
        plots: draw Optuna's history and importance plots (False: none, ~1 s a study saved; the lab's searches).

    Returns:
        The content of ``summary.json``: counts by state, what the pruned and failed trials died of, the
        best trial (number, value, changes, directory), and where ``best.yaml``, ``trials.csv`` and the plots are.

    Raises:
        TrainwellError: a bad config, space, storage or option, in one line; nothing is written.

    Example:
        >>> tune("base.yaml", "space.yaml", trials=30, jobs=2)  # doctest: +SKIP
    """
    require_optuna()
    if metric not in METRICS:
        raise TrainwellError(f"--metric takes {' or '.join(METRICS)}, got {metric!r}")
    if sampler not in SAMPLERS:
        raise TrainwellError(f"--sampler takes {', '.join(SAMPLERS)}, got {sampler!r}")
    if pruner not in PRUNERS:
        raise TrainwellError(f"--pruner takes {' or '.join(PRUNERS)}, got {pruner!r}")
    if trials < 1 or jobs < 1:
        raise TrainwellError(f"--trials and --jobs must be >= 1, got {trials} and {jobs}")
    if threads is not None and threads < 1:
        raise TrainwellError(f"threads must be >= 1, got {threads}")
    if timeout is not None and not timeout > 0:
        raise TrainwellError(f"--timeout must be > 0 seconds, got {timeout}")
    if space is None:
        raise TrainwellError("tune needs a search space: --space SPACE.yaml (e.g. optim.lr: {log_uniform: [1e-4, 1]})")
    cfg = resolve_config(config)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    cfg = record_data(cfg)  # a data.path file: checked and recorded (absolute, sha256, shape) as a run records it
    searched = load_space(space, cfg)
    notes = []
    if sampler == "grid":
        size = math.prod(len(v) for v in searched.grid().values())
        if trials > size:
            notes.append(f"the grid has {size} points: {size} trials, not {trials}")
            trials = size
    with _quiet_optuna():
        return _tune(cfg, searched, study or cfg.run_name, trials=trials, jobs=jobs, storage=storage, sampler=sampler,
                     timeout=timeout, out=out, metric=metric, pruner=pruner, heartbeat=heartbeat, progress=progress,
                     notes=notes, threads=threads or threads_for(jobs), plots=plots)


def _tune(cfg: Any, searched: Space, name: str, *, trials: int, jobs: int, storage: str | Path | None,
          sampler: str, timeout: float | None, out: str | Path | None, metric: str, pruner: str, heartbeat: int,
          progress: bool, notes: list[str], threads: int, plots: bool = True) -> dict[str, Any]:
    identity = {"metric": metric, "space": searched.to_dict(), "config": cfg.model_dump(mode="json")}
    if storage is not None and "://" in str(storage):  # a server: reachable, before anything is written
        shared = Storage(storage_spec(storage, Path("."), heartbeat))
        opened = _open_study(shared, name, metric, identity)
        root = _study_dir(out, name)
    else:
        root = _study_dir(out, name)
        shared = Storage(storage_spec(storage, root.resolve(), heartbeat))
        opened = _open_study(shared, name, metric, identity)
    spec = shared.spec
    if sampler == "grid":
        _queue_grid(opened, shared, name, searched, trials)
    atomic_write_text(root / STUDY_FILE, json.dumps({"study": name, "storage": spec.describe(), "metric": metric,
                                                     "trials": trials, "space": searched.to_dict()}, indent=2))
    w = Worker(cfg.model_dump(mode="json"), searched.to_dict(), name, spec, str(root.resolve()), trials, metric,
               sampler, pruner, timeout, threads, cfg.seed)
    _run_workers(w, jobs, progress, notes, shared)
    ended = optuna.load_study(study_name=name, storage=shared.optuna)
    have = len(counted(ended.get_trials(deepcopy=False)))
    if timeout is not None and have < trials:
        notes.append(f"stopped on the timeout: no new trial after {timeout:g} s ({have} of {trials} trials); "
                     "running the command again goes on")
    return write_outputs(ended, root, metric, trials, notes, plots=plots)


def _run_workers(w: Worker, jobs: int, progress: bool, notes: list[str], shared: Storage) -> None:
    """``jobs`` workers on the study (this process when 1), with a progress bar over its trials."""
    from rich.progress import Progress

    def finished(study: Any) -> int:
        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return sum(t.state in done for t in counted(study.get_trials(deepcopy=False)))

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"tuning {w.study}", total=w.trials)
        if jobs == 1:
            with _quiet_optuna(w.threads):
                work(w, on_trial=lambda s: bar.update(task, completed=finished(s)))
            return
        # fork starts in milliseconds with everything imported; it is safe from a process with one thread (no
        # lock held by another thread at the fork) when each worker runs one torch thread (OpenMP's state)
        fork = w.threads == 1 and threading.active_count() == 1 and "fork" in get_all_start_methods()
        ctx = get_context("fork" if fork else "spawn")
        procs = [ctx.Process(target=_worker_main, args=(w,), name=f"trainwell-tune-{i}") for i in range(jobs)]
        for p in procs:
            p.start()
        study = optuna.load_study(study_name=w.study, storage=shared.optuna) if progress else None
        try:
            while any(p.is_alive() for p in procs):
                if study is not None:
                    bar.update(task, completed=finished(study))
                time.sleep(0.5)
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                p.join()
    lost = [f"worker {i} (pid {p.pid}) ended with exit code {p.exitcode}" for i, p in enumerate(procs) if p.exitcode]
    notes.extend(lost)
