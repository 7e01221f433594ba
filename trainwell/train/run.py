"""A whole run: config in, run directory out (seed 004's process end to end).

A run directory holds:

* ``config.yaml``   - the full resolved config (every default filled in);
* ``history.jsonl`` - one line per epoch;
* ``metrics.json``  - final train/val/test metrics, per-class recall, best epoch;
* ``model.safetensors`` - the parameters; the structure is the config's
  ``model`` section plus the input shape and class count in the file's
  metadata. Loading never unpickles anything.
"""

from __future__ import annotations

import copy
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from trainwell.config import Config, DataConfig, apply_overrides, load_config, resolve_config
from trainwell.data.datasets import Data, Split, load_data
from trainwell.data.augment import Augment, expand_training_rows
from trainwell.data.imbalance import resample_split
from trainwell.data.samplers import balanced_row_weights
from trainwell.errors import TrainwellError
from trainwell.losses import make_loss
from trainwell.models import build_model, count_parameters
from trainwell.optim.lr_find import lr_range_test
from trainwell.optim.registry import build_optimizer
from trainwell.optim.schedules import LRSchedule, build_schedule
from trainwell.doctor import DoctorCallback, Finding, audit, plan_repair
from trainwell.doctor.audit import BAD_LABELS, NON_FINITE, unusable_rows
from trainwell.doctor.remedies import repairable
from trainwell.train.callbacks import Callback, EarlyStopping, GradientClipping, HistoryFile, ProgressBar
from trainwell.train.checkpoint import (Checkpoint, LastGoodState, config_digest, latest_checkpoint,
                                        load_checkpoint, restore_rng)
from trainwell.train.files import UnreadableFile, atomic_save_safetensors, atomic_write_text, read_safetensors
from trainwell.train.trainer import Trainer, evaluate

__all__ = ["Interrupted", "Run", "evaluate_run", "load_model", "save_model", "train"]

MODEL_FILE = "model.safetensors"
MODEL_FORMAT = "trainwell-model/1"


@dataclass
class Run:
    """The result of :func:`train`: where it was written and what it measured."""

    dir: Path
    config: Config
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    model: nn.Module = field(repr=False)
    diagnosis: dict[str, Any] = field(default_factory=dict)  # diagnosis.json: audit, findings, notes, repairs
    data: Data | None = field(default=None, repr=False)  # what it trained on (after resampling and augmentation)
    loaded: Data | None = field(default=None, repr=False)  # the data as loaded, before them (a repair reuses it)
    good: LastGoodState | None = field(default=None, repr=False)  # an attempt's kept state (None once train returns)
    finish: Callable[[], None] | None = field(default=None, repr=False)  # an attempt's files, when not written yet

    @property
    def findings(self) -> list[Finding]:
        """The audit's and the doctor's findings (the last attempt's, after repairs)."""
        return [Finding(**f) for f in self.diagnosis.get("audit", []) + self.diagnosis.get("findings", [])]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainwellError(f"train.device={name} but no CUDA device is available; use train.device=cpu")
    return torch.device(name)


def _data(d: DataConfig) -> Data:
    return load_data(d.name, n_samples=d.n_samples, noise=d.noise, val_fraction=d.val_fraction,
                     test_fraction=d.test_fraction, seed=d.seed, imbalance_ratio=d.imbalance_ratio, **d.options)


def _data_meta(data: Data) -> dict[str, Any]:
    """What rebuilding the model and its loss needs to know about the data (saved with the model)."""
    return {"input_shape": list(data.input_shape), "n_classes": data.n_classes, "kind": data.kind,
            "input_vocab": data.input_vocab, "target_length": data.target_length,
            "class_counts": data.class_counts().tolist()}


def _build(cfg: Config, data_meta: dict[str, Any], mean: torch.Tensor | None = None,
           std: torch.Tensor | None = None) -> nn.Module:
    return build_model(cfg.model, tuple(data_meta["input_shape"]), data_meta["n_classes"], data_meta["kind"],
                       mean, std, input_vocab=data_meta.get("input_vocab"),
                       target_length=data_meta.get("target_length"))


def _loss(cfg: Config, data_meta: dict[str, Any]):
    return make_loss(cfg.loss, data_meta["n_classes"], data_meta.get("class_counts"), **cfg.loss_options)


def _teacher_forcing(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sequence models read the true previous target token in training."""
    return model(x, y)


def _new_run_dir(out: str | Path | None, name: str) -> Path:
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{stamp}-{name}"
        path, i = base, 2
        while path.exists():
            path, i = base.with_name(f"{base.name}-{i}"), i + 1
    else:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise TrainwellError(f"--out {path} already exists and is not an empty directory; "
                                 "choose a new directory (nothing was written)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrainwellError(f"cannot create run directory {path}: {err.strerror}") from None
    return path


def _best_epoch(history: list[dict[str, Any]]) -> int | None:
    scored = [h for h in history if "val_loss" in h and np.isfinite(h["val_loss"])]
    return min(scored, key=lambda h: h["val_loss"])["epoch"] if scored else None


class Interrupted(Exception):
    """Training stopped on SIGINT or SIGTERM after writing a checkpoint; ``trainwell train --resume`` continues it."""

    def __init__(self, signum: int, run_dir: Path, checkpoint: Path | None, epoch: int, step: int) -> None:
        self.signum, self.run_dir, self.checkpoint, self.epoch, self.step = signum, run_dir, checkpoint, epoch, step
        name = signal.Signals(signum).name
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint (checkpoints are off)"
        super().__init__(f"training interrupted by {name} at epoch {epoch}, step {step}; {saved}\n"
                         f"resume with: trainwell train --resume {run_dir}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _SignalGuard:
    """First SIGINT/SIGTERM: ask the loop to stop after the current step. Second: stop at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # the second one: no more waiting
            self.__exit__()
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class _StopOnSignal(Callback):
    """Checks the guard after every step and epoch: checkpoint, then raise :class:`Interrupted`."""

    def __init__(self, guard: _SignalGuard, checkpoint: Checkpoint | None, run_dir: Path) -> None:
        self.guard, self.checkpoint, self.run_dir = guard, checkpoint, run_dir

    def _check(self, trainer: Trainer) -> None:
        if self.guard.signum is None:
            return
        path = self.checkpoint.save(trainer, wait=True) if self.checkpoint else None
        raise Interrupted(self.guard.signum, self.run_dir, path, trainer.epoch, trainer.step)

    on_batch_end = _check
    on_epoch_end = _check


def _resume_state(run_dir: Path, config: Any, overrides: Sequence[str]) -> tuple[Config, dict[str, Any]]:
    run_dir, saved = _read_run(run_dir)
    if config is not None or overrides:
        given = resolve_config(config)
        if overrides:
            given = apply_overrides(given, overrides)
        if given != saved:
            raise TrainwellError(f"--resume continues {run_dir} with its own config.yaml; "
                                 "the config given differs from it (leave it out, or start a new run)")
    if (run_dir / "metrics.json").exists():
        raise TrainwellError(f"{run_dir} already finished (metrics.json exists); nothing to resume")
    path = latest_checkpoint(run_dir / "checkpoints")
    if path is None:
        raise TrainwellError(f"no checkpoint in {run_dir / 'checkpoints'} to resume from")
    return saved, load_checkpoint(path, config_digest(saved.to_yaml()))


def train(config: Config | dict[str, Any] | str | Path | None = None, *, overrides: Sequence[str] = (),
          out: str | Path | None = None, callbacks: Sequence[Callback] = (),
          progress: bool | None = None, resume: str | Path | None = None, data: Data | None = None) -> Run:
    """Run seed 004's process from a config and write a run directory.

    The doctor watches the run (``doctor.enabled``): the data are audited
    first, findings are printed as they appear and written to
    ``diagnosis.json``. With ``doctor.repair`` the remedy of the most severe
    finding is applied as config changes and the run starts again, up to
    ``doctor.max_repairs`` times; every attempt is recorded. A remedy that
    changes only the optimiser's settings (learning rate, clipping, a
    schedule) goes on from the last good state (the epoch with the lowest
    training loss) when that state had learnt something; other remedies
    start again. A problem of the data that a config change fixes (unscaled
    inputs, class imbalance) is fixed before the first epoch.

    Args:
        config: a :class:`Config`, a dict of keys, a YAML path, or None (defaults).
        overrides: ``"key=value"`` strings applied on top (as ``--set``).
        out: the run directory (new or empty); default ``runs/<timestamp>-<name>``.
        callbacks: extra callbacks for the trainer (pass the same ones to a resume).
        progress: show a progress bar and the findings (default: the config's ``train.progress``).
        resume: a run directory to continue from its latest checkpoint, exactly
            (parameters bit-identical to a run never interrupted, on the same
            machine and thread count).
        data: your own :class:`~trainwell.data.Data` instead of ``config.data``'s
            embedded set (``data.batch_size`` and ``data.standardize`` still apply).

    Returns:
        A :class:`Run` with the directory, resolved config, history, metrics, model and diagnosis.

    Raises:
        TrainwellError: invalid config, data set or model choice, or an unusable
            checkpoint; nothing is written.
        Interrupted: SIGINT or SIGTERM arrived; a checkpoint was written first.

    Example:
        >>> run = train({"data": {"name": "moons"}, "train": {"epochs": 5}}, out="runs/moons")
        >>> run.metrics["test"]["accuracy"]  # doctest: +SKIP
    """
    if resume is not None:
        cfg, state = _resume_state(Path(resume), config, overrides)
    else:
        cfg, state = resolve_config(config), None
        if overrides:
            cfg = apply_overrides(cfg, overrides)
    repairs: list[dict[str, Any]] = []
    tried: list[list[str]] = []

    def next_plan(findings: list[Finding], done: int) -> tuple[Finding, list[str]] | None:
        """The repair that follows an attempt made after ``done`` repairs, if any."""
        if not (cfg.doctor.enabled and cfg.doctor.repair and done < cfg.doctor.max_repairs):
            return None
        return plan_repair(findings, cfg, tried)

    def replaced(done: int) -> Callable[[list[Finding]], bool]:
        return lambda findings: next_plan(findings, done) is not None

    run = _fit(cfg, state, out=out, resume=resume, callbacks=callbacks, progress=progress, data=data,
               will_repair=replaced(0))
    while (plan := next_plan(run.findings, len(repairs))) is not None:
        finding, changes = plan
        tried.append(changes)
        before = _outcome(run)
        good = _going_on_from(run, cfg, changes)
        current_lr = cfg.optim.lr
        cfg = apply_overrides(cfg, changes)
        range_test = None
        if cfg.optim.lr != current_lr:  # a learning-rate remedy: size it by a range test on the new set-up
            range_test = _range_test(cfg, run.data, current_lr, state=good.state if good else None)
            if range_test["used"]:
                changes = [c for c in changes if not c.startswith("optim.lr=")] + \
                    [f"optim.lr={range_test['suggestion']:.4g}"]
                cfg = apply_overrides(cfg, changes[-1:])
        start = f"from epoch {good.epoch} (its last good state)" if good else "from scratch"
        _say(progress, cfg, f"repair {len(repairs) + 1}: {finding.symptom}"
                            f"{f' ({finding.cause})' if finding.cause else ''} -> {' '.join(changes)}, {start}")
        _clear_run(run.dir)
        if good is not None:  # on the data that state trained on (resampled, augmented: not again)
            loaded = run.loaded
            run = _fit(cfg, good.state, out=run.dir, callbacks=callbacks, progress=progress, data=run.data,
                       going_on=_GoingOn([Finding(**f) for f in run.diagnosis.get("audit", [])],
                                         cfg.optim.lr / current_lr), will_repair=replaced(len(repairs) + 1))
            run.loaded = loaded
        else:
            same_data = data if data is not None or any(c.startswith("data.") for c in changes) else run.loaded
            run = _fit(cfg, None, out=run.dir, reuse_dir=True, callbacks=callbacks, progress=progress,
                       data=same_data, will_repair=replaced(len(repairs) + 1))
        repairs.append({"attempt": len(repairs) + 1, "symptom": finding.symptom, "cause": finding.cause,
                        "layer": finding.layer, "changes": changes, "from_epoch": good.epoch if good else 0,
                        **({"lr_range_test": range_test} if range_test else {}),
                        "before": before, "after": _outcome(run)})
    if run.finish is not None:  # the last attempt: its files
        run.finish()
        run.finish = None
    in_place = [f for f in run.findings if "repaired_in_place" in f.evidence]
    repairs += [{"attempt": len(repairs) + 1, "symptom": f.symptom, "cause": f.cause, "layer": f.layer,
                 "changes": [f.evidence["repaired_in_place"]], "after": _outcome(run)} for f in in_place]
    if repairs:
        run.diagnosis["repairs"] = repairs
        atomic_write_text(run.dir / "diagnosis.json", json.dumps(run.diagnosis, indent=2, default=str))
    run.good = None  # a copy of a model and its optimizer: not kept once no repair will use it
    return run


class _GoingOn(NamedTuple):
    """A repaired attempt that goes on from a kept state: the audit's findings, and the new rate / the old."""

    audit: list[Finding]
    lr_scale: float


# Remedies that change only how the optimiser steps: the model and the data stay, so a repair can go on.
_OPTIMISER_KEYS = ("optim.lr", "clip.max_norm", "clip.value", "schedule.name")
# Updates a kept state needs behind it to count as good: the doctor finds a problem that is there from the start
# (a rate too high from step 0) within about this many, so an earlier state was reached under the problem.
_GOOD_AFTER_UPDATES = 50


def _going_on_from(run: Run, cfg: Config, changes: list[str]) -> LastGoodState | None:
    """The kept state a repair goes on from, or None to start again from scratch.

    Only when every change is one of the optimiser's settings (and none of the
    schedule's when the run has one: its place in another schedule would mean
    nothing; a schedule it has is scaled with the rate), and the kept epoch is
    good: at least ``_GOOD_AFTER_UPDATES`` updates in (a state reached sooner
    was reached under a problem that was there from the start) and with a
    training loss below 0.9 of the first epoch's. A state that learnt nothing
    (a rate too low) is no better than a fresh start, which gets the whole
    epoch budget.
    """
    good = run.good
    if good is None or good.state is None or good.epoch >= cfg.train.epochs \
            or good.state["trainer"]["step"] < _GOOD_AFTER_UPDATES:
        return None
    if any(c.split("=", 1)[0] not in _OPTIMISER_KEYS for c in changes):
        return None
    scheduled = cfg.schedule.name != "none" or cfg.schedule.warmup_epochs
    if scheduled and any(c.startswith("schedule.") for c in changes):
        return None
    return good if good.train_loss < 0.9 * good.first_train_loss else None


def _range_test(cfg: Config, data: Data, current_lr: float, steps: int = 60, below: float = 1e2,
                above: float = 1e3, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the LR range test on the repaired set-up (fresh model, training batches, the run's seed).

    With ``state`` (a kept training state the repair goes on from), the test
    starts from its model and optimizer instead of a fresh model.

    The rate grows from ``estimate / below`` to ``estimate * above`` in ``steps``
    steps (0.083 decades a step at 60) and the test stops where the loss
    diverges, usually after two thirds of them. A test never takes more than a
    quarter of the run's own updates (at least 15): a run of 80 updates gets
    20, at 0.25 decades a step, with the loss's moving average shortened in
    proportion (its delay stays 15% of the steps: 9 of 60, 3 of 20).

    The doctor's estimate (``cfg.optim.lr``, sized from the measured step) says
    which way the rate must go; the test's turning rate (where the loss was
    lowest) replaces it when it goes that way too, is not the rate that failed,
    and the loss fell during the test for longer than its moving average's
    delay (else the test saw nothing to go by, and the estimate stands).
    """
    estimate = cfg.optim.lr
    device = _device(cfg.train.device)
    meta = _data_meta(data)
    n, size = len(data.train), min(cfg.data.batch_size, len(data.train))
    steps = max(min(steps, cfg.train.epochs * -(-n // size) // 4), 15)
    delay = max(round(0.15 * steps), 1)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        model = _build(cfg, meta, *((data.mean, data.std) if cfg.data.standardize else (None, None))).to(device)
        optimizer = build_optimizer(model, cfg.optim, cfg.reg)
        if state is not None:  # torch's load_state_dict keeps the given buffers: the test must not step those
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        x, y = data.train.x.to(device), data.train.y.to(device)
        order = torch.cat([torch.randperm(len(y)) for _ in range(steps * size // len(y) + 1)])
        batches = [(x[i], y[i]) for i in order[:steps * size].split(size)]
        try:
            test = lr_range_test(model, optimizer, _loss(cfg, meta), batches, start_lr=estimate / below,
                                 end_lr=estimate * above, steps=steps, smoothing=delay / (delay + 1),
                                 max_norm=cfg.clip.max_norm,
                                 forward=_teacher_forcing if data.kind == "sequence" else None)
        except ValueError:
            return {"estimate": estimate, "used": False}
    suggestion = test.turning_lr  # the doctor watches the repaired run: a rate that proves unstable is lowered
    lower = estimate < current_lr
    # the loss fell, and for longer than the moving average's delay: a minimum within it (a trained state's
    # flat start) puts the turning rate on the test's lower bound, a bound and not a measurement
    fell = min(test.losses) < test.losses[0] and test.losses.index(min(test.losses)) > delay
    used = fell and (suggestion < current_lr if lower else suggestion > current_lr)
    return {"estimate": estimate, "suggestion": suggestion, "min_loss_lr": test.min_loss_lr,
            "steps": len(test.lrs), "diverged": test.diverged, "used": used}


def _outcome(run: Run) -> dict[str, Any]:
    return {"val_accuracy": run.metrics["val"]["accuracy"], "epochs_run": run.metrics["epochs_run"],
            "train_seconds": run.metrics["train_seconds"],
            "findings": [f"{f.severity}:{f.symptom}" for f in run.findings if f.severity != "info"]}


def _clear_run(run_dir: Path) -> None:
    """Before a repaired attempt: drop the failed attempt's files (its checkpoints belong to another config)."""
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    for name in ("history.jsonl", "metrics.json", MODEL_FILE, "diagnosis.json"):
        (run_dir / name).unlink(missing_ok=True)


def _say(progress: bool | None, cfg: Config, text: str) -> None:
    if (cfg.train.progress if progress is None else progress):
        from rich.console import Console

        Console(stderr=True, highlight=False).print(text, markup=False)


def _bad_rows(data: Data) -> dict[str, dict[str, torch.Tensor]]:
    """Per split with any, the masks of :func:`~trainwell.doctor.audit.unusable_rows`.

    Checked before every run, doctor or not: a label out of range would stop the loss with an index
    error, a non-finite feature would turn the loss into NaN.
    """
    masks = {name: unusable_rows(getattr(data, name), data.n_classes) for name in ("train", "val", "test")}
    return {name: m for name, m in masks.items() if any(bool(v.any()) for v in m.values())}


def _say_bad_rows(bad: dict[str, dict[str, torch.Tensor]], n_classes: int) -> str:
    name_of = {NON_FINITE: NON_FINITE, BAD_LABELS: f"labels outside 0..{n_classes - 1}"}
    return "; ".join(f"{name_of[what]} ({name} rows {mask.nonzero().flatten()[:20].tolist()})"
                     for name, found in bad.items() for what, mask in found.items() if mask.any())


def _drop_bad_rows(data: Data, bad: dict[str, dict[str, torch.Tensor]], findings: list[Finding]) -> Data:
    """Remove the rows of :func:`_bad_rows` (``doctor.repair``), and say so in the findings."""
    splits = {}
    for name, found in bad.items():
        split = getattr(data, name)
        keep = ~torch.stack(list(found.values())).any(dim=0)
        splits[name] = Split(split.x[keep], split.y[keep])
        findings.append(Finding("bad_input", "info", 0, 0, {"split": name, "dropped_rows": int((~keep).sum())},
                                cause="bad_input", remedy="the rows were dropped (doctor.repair)"))
    return replace(data, **splits)


def _resample(data: Data, cfg: Config) -> Data:
    """Rebalance the training split only: validation and test keep the real class frequencies."""
    if data.kind == "sequence":
        raise TrainwellError("data.imbalance needs one class per row; sequence tasks have a class per token")
    imb = cfg.data.imbalance
    try:
        x, y = resample_split(data.train.x, data.train.y, imb.method, cfg.seed, **imb.arguments)
    except ValueError as err:
        raise TrainwellError(f"data.imbalance.method={imb.method}: {err}") from None
    return replace(data, train=Split(x, y))


def _fit(cfg: Config, state: dict[str, Any] | None, *, out: str | Path | None, resume: str | Path | None = None,
         reuse_dir: bool = False, callbacks: Sequence[Callback] = (), progress: bool | None = None,
         data: Data | None = None, going_on: _GoingOn | None = None,
         will_repair: Callable[[list[Finding]], bool] | None = None) -> Run:
    """Train one attempt. ``state`` is a checkpoint to resume ``resume`` from, or, with ``going_on``,
    a kept state a repair goes on from in ``out`` with ``cfg``'s new settings: ``data`` is then the
    data that state trained on, used as it is. ``will_repair(findings)`` says a repair will replace
    the attempt: its files and full metrics are then left to ``run.finish`` (validation accuracy only)."""
    device = _device(cfg.train.device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    resumed = state is not None and going_on is None  # else a new attempt: its audit, config and files are its own
    show = cfg.train.progress if progress is None else progress
    audit_findings: list[Finding] = []
    # The run's randomness is its own: seeded here, the caller's RNG state is restored after.
    with torch.random.fork_rng(devices=cuda), _SignalGuard() as guard:
        torch.manual_seed(cfg.seed)
        data = _data(cfg.data) if data is None else data
        loaded = data
        if going_on is not None:
            audit_findings = going_on.audit
        elif cfg.doctor.enabled and state is None:
            audit_findings = audit(data.train, data.val, data.test, n_classes=data.n_classes,
                                   standardized=cfg.data.standardize and data.kind != "sequence",
                                   balanced=cfg.data.imbalance.method != "none" or cfg.loss == "weighted_cross_entropy")
        if going_on is None:
            bad = _bad_rows(data)
            if bad and cfg.doctor.enabled and cfg.doctor.repair:
                data = _drop_bad_rows(data, bad, audit_findings)
            elif bad:
                raise TrainwellError(f"the data hold {_say_bad_rows(bad, data.n_classes)}; fix them, or set doctor.repair=true"
                                     f"{'' if cfg.doctor.enabled else ' and doctor.enabled=true'} to drop those rows")
        meta = _data_meta(data)
        if cfg.data.imbalance.method not in ("none", "balanced_sampler") and going_on is None:
            data = _resample(data, cfg)
        a = cfg.data.augment
        if (a.duplicate or a.gaussian) and going_on is None:
            if data.kind == "sequence":
                raise TrainwellError("data.augment.duplicate/gaussian need numeric features, not token sequences")
            x, y = expand_training_rows(data.train.x, data.train.y, duplicate=a.duplicate, gaussian=a.gaussian,
                                        noise=a.noise, seed=cfg.seed)
            data = replace(data, train=Split(x, y))
        augment = None
        if a.noise or a.shift or a.rotate or a.crop:
            if data.kind == "sequence":
                raise TrainwellError("data.augment changes numeric features; sequence tasks are tokens")
            try:  # a change that does not fit the data fails here, before anything is written
                augment = Augment(data.kind, cfg.seed, data.std, noise=a.noise, shift=a.shift, rotate=a.rotate,
                                  crop=a.crop)
            except ValueError as err:
                raise TrainwellError(str(err)) from None
        model = _build(cfg, meta, *((data.mean, data.std) if cfg.data.standardize else (None, None))).to(device)
        optimizer = build_optimizer(model, cfg.optim, cfg.reg)
        new_schedule = going_on is not None and "LRSchedule" not in state["trainer"]["callbacks"]
        done = state["trainer"]["epoch"] if new_schedule else 0  # a schedule added by the repair spans the epochs left
        schedule = build_schedule(optimizer, cfg.schedule, cfg.train.epochs - done)
        loss_fn = _loss(cfg, meta)
        if resumed:
            run_dir = Path(resume)
        else:  # only now: bad input writes nothing
            run_dir = Path(out) if reuse_dir or going_on is not None else _new_run_dir(out, cfg.run_name)
            atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        if cfg.doctor.enabled and not resumed:  # the audit of the start, kept by a resume
            atomic_write_text(run_dir / "diagnosis.json",
                              json.dumps({"audit": [f.to_dict() for f in audit_findings]}, indent=2, default=str))
        for finding in audit_findings:
            _say(progress, cfg, str(finding))
        c = cfg.checkpoint
        checkpoint = Checkpoint(run_dir / "checkpoints", config_digest(cfg.to_yaml()), every_steps=c.every_steps,
                                every_epochs=c.every_epochs, keep=c.keep, best=c.best) \
            if (c.every_steps or c.every_epochs or c.best) else None
        e = cfg.early_stopping
        stopper = EarlyStopping(e.monitor, e.mode, e.min_delta, e.patience, e.restore_best) if e.enabled else None
        doctor = DoctorCallback(cfg.doctor.every, on_finding=(lambda f: _say(progress, cfg, str(f))),
                                stop_when=(lambda f: repairable(f, cfg)) if cfg.doctor.repair else None,
                                patience=e.patience, monitor=e.monitor, mode=e.mode, min_delta=e.min_delta) \
            if cfg.doctor.enabled else None
        good = LastGoodState(without=(DoctorCallback, Checkpoint)) \
            if doctor is not None and cfg.doctor.repair and cfg.doctor.max_repairs > 0 else None
        trainer = Trainer(model, optimizer, loss_fn, data.train.to(device), data.val.to(device),
                          epochs=cfg.train.epochs, batch_size=cfg.data.batch_size,
                          generator=torch.Generator().manual_seed(cfg.seed),
                          forward=_teacher_forcing if data.kind == "sequence" else None,
                          row_weights=balanced_row_weights(data.train.y)
                          if cfg.data.imbalance.method == "balanced_sampler" else None,
                          callbacks=[*([augment] if augment else []),
                                     *([GradientClipping(cfg.clip.max_norm, cfg.clip.value)]
                                       if cfg.clip.max_norm or cfg.clip.value else []),
                                     *([doctor] if doctor else []),
                                     *([schedule] if schedule else []),
                                     *([stopper] if stopper else []),
                                     HistoryFile(run_dir / "history.jsonl"),
                                     *([checkpoint] if checkpoint else []),
                                     *([ProgressBar(cfg.run_name)] if show else []), *callbacks,
                                     *([good] if good else []),  # after the doctor: an epoch it stopped is not kept
                                     _StopOnSignal(guard, checkpoint, run_dir)])
        if going_on is not None:
            _go_on(state, going_on.lr_scale, model, optimizer, trainer)
        elif state is not None:
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                trainer.load_state_dict(state["trainer"])
            except (KeyError, RuntimeError, ValueError) as err:
                raise TrainwellError(f"the checkpoint in {run_dir} does not fit this run: "
                                     f"{str(err).splitlines()[0]}") from None
            restore_rng(state["rng"])
        if state is not None:  # the epochs done so far
            atomic_write_text(run_dir / "history.jsonl", "".join(json.dumps(h) + "\n" for h in trainer.history))
        started = time.perf_counter()
        # a problem of the data that the repair can fix (unscaled inputs, imbalance) is fixed before any training
        fix_first = doctor is not None and cfg.doctor.repair and cfg.doctor.max_repairs > 0 \
            and going_on is None and plan_repair(audit_findings, cfg) is not None
        history = [] if fix_first else trainer.fit()
        seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {"best_epoch": _best_epoch(history), "epochs_run": len(history),
                               "train_seconds": seconds, "n_parameters": count_parameters(model)}
    diagnosis: dict[str, Any] = {}
    if doctor is not None:
        diagnosis = {"audit": _previous_audit(run_dir) if resumed else [f.to_dict() for f in audit_findings],
                     "findings": [f.to_dict() for f in doctor.findings],
                     "notes": doctor.doctor.notes if doctor.doctor is not None else []}
    run = Run(run_dir, cfg, history, metrics, model, diagnosis, data, loaded, good)

    def finish() -> None:
        """The attempt's files and full metrics: the model, metrics.json, diagnosis.json."""
        save_model(model, run_dir, meta)
        run.metrics = {**_metrics(model, data, cfg, device, loss_fn), **metrics}
        if getattr(model.net, "pretrained_report", None) is not None:  # model.init=pretrained: what was loaded
            run.metrics["pretrained"] = model.net.pretrained_report
        atomic_write_text(run_dir / "metrics.json", json.dumps(run.metrics, indent=2))
        val = run.metrics["val"]
        for f in audit_findings:  # what the imbalance did: the minority classes' recall on validation
            if f.symptom == "class_imbalance" and val.get("per_class_recall"):
                f.evidence["minority_val_recall"] = {str(c): val["per_class_recall"][c]  # JSON keys
                                                     for c in f.evidence["minority_classes"]}
        if doctor is not None:
            if not resumed:  # with the imbalance's minority recall, known now
                diagnosis["audit"] = [f.to_dict() for f in audit_findings]
            atomic_write_text(run_dir / "diagnosis.json", json.dumps(diagnosis, indent=2, default=str))

    if will_repair is not None and will_repair(run.findings):
        # an attempt a repair replaces: its files would be deleted unread; the repair record needs its accuracy
        metrics["val"] = {"accuracy": evaluate(model, data.val.to(device), loss_fn)["accuracy"]}
        run.finish = finish  # done by train() if no repair follows after all
    else:
        finish()
    return run


def _go_on(state: dict[str, Any], lr_scale: float, model: nn.Module, optimizer: torch.optim.Optimizer,
           trainer: Trainer) -> None:
    """Load a kept state into a repaired attempt: the optimizer's buffers stay, its rates are scaled by
    ``lr_scale`` (the new rate / the old), and so is the run's own schedule, which keeps its place.

    The doctor watches afresh (its findings were about the old settings) and
    checkpoints start again (the old attempt's files are gone): the kept state
    has neither's; the other callbacks (early stopping, history) carry on.
    """
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:  # per-group rates keep their ratios
        group["lr"] *= lr_scale
        if "initial_lr" in group:
            group["initial_lr"] *= lr_scale
    trainer.load_state_dict(state["trainer"])
    for cb in trainer.callbacks:
        if isinstance(cb, LRSchedule):  # torch's schedulers step from the group's rate (scaled above); the
            # rates they started from and last set are scaled too, for get_last_lr() and cosine's restarts
            for s in (cb.scheduler, cb.warmup, *getattr(cb.scheduler, "_schedulers", ())):
                for name in ("base_lrs", "_last_lr"):
                    if s is not None and getattr(s, name, None) is not None:
                        setattr(s, name, [lr * lr_scale for lr in getattr(s, name)])
    restore_rng(state["rng"])


def _previous_audit(run_dir: Path) -> list[dict[str, Any]]:
    """A resumed run keeps the audit of its start (written to diagnosis.json then)."""
    try:
        return json.loads((run_dir / "diagnosis.json").read_text())["audit"]
    except (OSError, ValueError, KeyError):
        return []




def _metrics(model: nn.Module, data: Data, cfg: Config, device: torch.device, loss_fn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        split = split.to(device)
        result = evaluate(model, split, loss_fn, return_predictions=name != "train")
        if name != "train":
            result.update(class_metrics(result.pop("predictions"), split.y, data.n_classes))
        out[name] = result
    return out


def class_metrics(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> dict[str, Any]:
    """What imbalance needs besides accuracy: per-class recall (None for a class without rows) and
    precision, balanced accuracy, macro F1 and the confusion matrix (rows: true class, columns: predicted).

    The values are scikit-learn's (``zero_division=0``; balanced accuracy over the classes present),
    computed from one confusion matrix: its input checks cost ~15 ms a run on small data sets.
    """
    t, p = y.flatten().long().cpu(), pred.flatten().long().cpu()
    cm = torch.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp, rows, cols = cm.diag().double(), cm.sum(1).double(), cm.sum(0).double()
    recall = [float(tp[c] / rows[c]) if rows[c] else None for c in range(n_classes)]
    precision = torch.where(cols > 0, tp / cols.clamp(min=1), 0.0)
    f1 = torch.where(rows + cols > 0, 2 * tp / (rows + cols).clamp(min=1), 0.0)  # 2tp / (2tp + fp + fn)
    present = [r for r in recall if r is not None]
    return {"per_class_recall": recall, "per_class_precision": precision.tolist(),
            "balanced_accuracy": sum(present) / len(present) if present else 0.0,
            "macro_f1": float(f1.mean()), "confusion_matrix": cm.tolist()}


# ---------------------------------------------------------------------- saved models

def save_model(model: nn.Module, run_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Write the parameters to ``run_dir/model.safetensors`` (atomically).

    Args:
        model: a model built by :func:`~trainwell.models.build_model`.
        run_dir: an existing run directory (its ``config.yaml`` holds the structure).
        meta: ``input_shape``, ``n_classes`` and ``kind`` of the data.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_save_safetensors(Path(run_dir) / MODEL_FILE, state,
                                   {"format": MODEL_FORMAT, "data": json.dumps(meta)})


def _read_run(run_dir: str | Path) -> tuple[Path, Config]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TrainwellError(f"run directory not found: {run_dir}")
    if not (run_dir / "config.yaml").is_file():
        raise TrainwellError(f"{run_dir} is not a trainwell run directory (no config.yaml)")
    return run_dir, load_config(run_dir / "config.yaml")


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> nn.Sequential:
    """Rebuild the model of a run directory and load its parameters (in eval mode).

    Raises:
        TrainwellError: the directory, config or weights file is missing, corrupt
            or from another model; the message says which.
    """
    return _load(run_dir)[0].to(device)


def read_model_file(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Header and tensors of a saved ``model.safetensors`` (never unpickles).

    Raises:
        TrainwellError: missing, unreadable, or not a trainwell model.
    """
    if not path.is_file():
        raise TrainwellError(f"no saved model at {path}")
    try:
        header, state = read_safetensors(path)
    except UnreadableFile as err:
        raise TrainwellError(f"{path} is not a readable safetensors file ({err})") from None
    if header.get("format") != MODEL_FORMAT:
        raise TrainwellError(f"{path} is not a trainwell model (format {header.get('format')!r})")
    return header, state


def _load(run_dir: str | Path) -> tuple[nn.Module, Config, dict[str, Any]]:
    ensemble = Path(run_dir) / "ensemble.json"
    if ensemble.is_file():  # an ensemble directory loads like a single model
        from trainwell.model_selection import Ensemble

        try:
            spec = json.loads(ensemble.read_text())
            loaded = [_load(Path(run_dir) / m["dir"]) for m in spec["members"]]
        except (ValueError, KeyError, TypeError) as err:
            raise TrainwellError(f"{ensemble} is not a readable ensemble ({err})") from None
        return Ensemble([m for m, _, _ in loaded], spec.get("combine", "average"), spec.get("weights")).eval(), \
            loaded[0][1], loaded[0][2]
    run_dir, cfg = _read_run(run_dir)
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise TrainwellError(f"{run_dir} holds no saved model ({MODEL_FILE} missing; did training finish?)")
    header, state = read_model_file(path)
    meta = json.loads(header["data"])
    standardized = "standardize.mean" in state
    shape = tuple(meta["input_shape"])
    with torch.random.fork_rng(devices=[]):
        model = _build(cfg, meta, *((torch.zeros(shape), torch.ones(shape)) if standardized else (None, None)))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise TrainwellError(f"{path} does not match the model in config.yaml: {first}") from None
    return model.eval(), cfg, meta


def _load_arrays(path: Path) -> Split:
    if not path.is_file():
        raise TrainwellError(f"data file not found: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if "x" not in f or "y" not in f:
                    raise TrainwellError(f"{path} must hold arrays 'x' and 'y', has {sorted(f.files)}")
                x, y = f["x"], f["y"]
        elif path.suffix == ".csv":
            table = np.loadtxt(path, delimiter=",", ndmin=2)
            x, y = table[:, :-1], table[:, -1]
        else:
            raise TrainwellError(f"--data must be a data set name, an .npz (x, y) or a .csv (label last), got {path}")
    except (OSError, ValueError) as err:
        if isinstance(err, TrainwellError):
            raise
        raise TrainwellError(f"cannot read {path}: {err}") from None
    if not np.all(np.isfinite(x)):
        rows = np.unique(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[:, 0])
        raise TrainwellError(f"{path} has non-finite values in rows {rows[:10].tolist()}")
    if np.any(y != np.round(y)) or np.any(y < 0):
        raise TrainwellError(f"{path}: labels must be non-negative integers")
    return Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long())


def evaluate_run(run_dir: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a saved model on its test split, or on ``data``.

    Args:
        run_dir: a run directory written by :func:`train`.
        data: None (the run's own test split), an embedded data set name
            (its test split, built with the run's data settings), or a file:
            ``.npz`` with arrays ``x`` and ``y``, or ``.csv`` with the label last.

    Returns:
        ``{"loss", "accuracy", "per_class_recall", "rows"}``.
    """
    model, cfg, meta = _load(run_dir)
    n_classes, expected = meta["n_classes"], tuple(meta["input_shape"])
    if data is None or str(data) in _dataset_names():
        d = cfg.data if data is None else cfg.data.model_copy(update={"name": str(data)})
        split = _data(d).test
    else:
        split = _load_arrays(Path(data))
    if tuple(split.x.shape[1:]) != expected:
        raise TrainwellError(f"data rows have shape {tuple(split.x.shape[1:])}, the model expects {expected}")
    if len(split.y) and int(split.y.max()) >= n_classes:
        raise TrainwellError(f"labels go up to {int(split.y.max())}, the model has {n_classes} classes")
    loss_fn = _loss(cfg, meta)
    try:
        result = evaluate(model, split, loss_fn, return_predictions=True)
    except RuntimeError as err:
        raise TrainwellError(f"data do not fit the model: {str(err).splitlines()[0]}") from None
    result.update(class_metrics(result.pop("predictions"), split.y, n_classes))
    result["rows"] = len(split)
    return result


def _dataset_names() -> list[str]:
    from trainwell.data.datasets import DATASETS

    return DATASETS.names()
