"""One attempt of a run: data made ready, a model built, trained and watched, its files written.

An attempt has an explicit :class:`Kind`:

* ``FRESH``   - a new run: a new directory, the data loaded and audited;
* ``RESUME``  - an interrupted run continued from its checkpoint, exactly;
* ``GO_ON``   - a repair that goes on from a kept state with new optimiser
  settings, on the data that state trained on;
* ``RESTART`` - a repair that starts again from scratch, in the same directory.

:func:`run_attempt` trains and returns an :class:`Outcome`; the repair loop
(:mod:`trainwell.runs.repair`) either replaces it by another attempt or
finishes it (:meth:`Outcome.finish`: the model, metrics and diagnosis files).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.config import Config
from trainwell.data import Data
from trainwell.data.samplers import balanced_row_weights
from trainwell.doctor import DoctorCallback, Finding, audit
from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text, save_model
from trainwell.loop import (Callback, Checkpoint, EarlyStopping, GradientClipping, HistoryFile, LastGoodState,
                            LRSchedule, ProgressBar, TensorBoardLogger, Trainer, build_schedule, evaluate,
                            require_tensorboard)
from trainwell.loop.checkpoint import config_digest, restore_rng
from trainwell.loop.distributed import Shard, all_gather, check_batches, is_main, on_main, start, world_size
from trainwell.metrics import best_epoch
from trainwell.models import count_parameters
from trainwell.optim.registry import build_optimizer
from trainwell.runs import prepare
from trainwell.runs.directory import new_run_dir, previous_audit, write_json
from trainwell.runs.evaluation import build, make_run_loss, split_metrics
from trainwell.runs.remedies import plan_repair, repairable
from trainwell.runs.console import say
from trainwell.runs.signals import SignalGuard, StopOnSignal

__all__ = ["Attempt", "Kind", "Outcome", "device_of", "findings_of", "run_attempt", "teacher_forcing"]


class Kind(Enum):
    FRESH = "fresh"
    RESUME = "resume"
    GO_ON = "go on from a kept state"
    RESTART = "restart"


@dataclass
class Attempt:
    """What one attempt trains.

    Attributes:
        kind: see :class:`Kind`.
        cfg: the config it trains with (a repair's, with its changes).
        out: ``FRESH``: the directory asked for (None: ``runs/<timestamp>-<name>``); otherwise the run's.
        data: ``FRESH``/``RESTART``: data as given or loaded (None: the config's data set); ``GO_ON``: the
            data the kept state trained on, used as they are.
        state: ``RESUME``: the checkpoint; ``GO_ON``: the kept state.
        audit: ``GO_ON``: the audit's findings of the run's start.
        lr_scale: ``GO_ON``: the new rate over the old (the optimizer's rates and the schedule are scaled).
        callbacks: the caller's extra callbacks.
        progress: show a progress bar and the findings (None: the config's ``train.progress``).
        handle_signals: checkpoint and stop on SIGINT/SIGTERM.
        record: the run's repairs so far and the config the user gave (written to diagnosis.json at the
            attempt's start, so that an interrupted repaired run keeps them).
    """

    kind: Kind
    cfg: Config
    out: str | Path | None = None
    data: Data | None = None
    state: dict[str, Any] | None = None
    audit: list[Finding] = field(default_factory=list)
    lr_scale: float = 1.0
    callbacks: tuple[Callback, ...] = ()
    progress: bool | None = None
    handle_signals: bool = False
    record: dict[str, Any] = field(default_factory=dict)


def findings_of(diagnosis: dict[str, Any]) -> list[Finding]:
    """The audit's and the doctor's findings of a diagnosis (as diagnosis.json holds them)."""
    return [Finding(**f) for f in diagnosis.get("audit", []) + diagnosis.get("findings", [])]


def device_of(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainwellError(f"train.device={name} but no CUDA device is available; use train.device=cpu")
    return torch.device(name)


def teacher_forcing(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sequence models read the true previous target token in training."""
    return model(x, y)


@dataclass
class Outcome:
    """A trained attempt, before its files are finished."""

    attempt: Attempt
    dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]          # best_epoch, epochs_run, train_seconds, n_parameters (all, once finished)
    diagnosis: dict[str, Any]        # audit, findings, notes (with the doctor on)
    model: nn.Module
    data: Data                       # what it trained on (after resampling and augmentation)
    loaded: Data                     # the data before them (a repair from scratch reuses it)
    good: LastGoodState | None       # the kept state a repair may go on from
    audit_findings: list[Finding]
    device: torch.device
    loss_fn: Any
    stopper: EarlyStopping | None    # the run's early stopping, if on
    shard: Shard | None = None       # this process's part of a data-parallel run

    def _status(self) -> dict[str, Any]:
        """How the attempt ended (``status``, and ``stopped`` when it did not run its epochs) and which weights
        the model file holds."""
        cfg, run = self.attempt.cfg, self.metrics
        out: dict[str, Any] = {"status": "completed", "weights": "last epoch"}
        s = self.stopper
        if s is not None and s.restore_best and s.tracker.best_epoch is not None:
            out["weights"] = f"best epoch {s.tracker.best_epoch} by {s.tracker.monitor} (early stopping)"
        elif any(f.repaired for f in self.findings):
            out["weights"] = "best epoch (the doctor's early stopping; see diagnosis.json)"
        nan = next((f for f in self.findings if f.symptom == "nan_loss"), None)
        train_loss = run.get("train", {}).get("loss")
        # a loss that became NaN fails the run even when early stopping then restored an earlier, finite epoch
        blown = next((h for h in self.history if any(
            isinstance(h.get(k), float) and not math.isfinite(h[k]) for k in ("train_loss", "val_loss"))), None)
        if nan is not None or blown is not None or (train_loss is not None and not math.isfinite(train_loss)):
            reason = f"nan loss ({nan.cause.replace('_', ' ')})" if nan is not None and nan.cause else "nan loss"
            where = {"epoch": nan.epoch, "step": nan.step} if nan is not None else \
                ({"epoch": blown["epoch"], "step": blown["step"]} if blown is not None else {"epoch": run["epochs_run"]})
            out.update(status="failed", stopped={**where, "reason": reason})
        elif s is not None and s.stopped_epoch is not None:
            out.update(status="early_stopped", stopped={"epoch": s.stopped_epoch,
                                                        "reason": f"early stopping (patience {s.patience})"})
        elif run["epochs_run"] < cfg.train.epochs:
            out.update(status="stopped", stopped={"epoch": run["epochs_run"], "reason": "the fit was cancelled"})
        return out

    @property
    def findings(self) -> list[Finding]:
        """The audit's and the doctor's findings."""
        return findings_of(self.diagnosis)

    @cached_property
    def val_accuracy(self) -> float:
        """Validation accuracy alone: what a repair record keeps of an attempt it replaces."""
        return evaluate(self.model, self.data.val.to(self.device), self.loss_fn)["accuracy"]

    def finish(self) -> None:
        """Write the attempt's files and full metrics: the model, metrics.json, diagnosis.json.

        In a data-parallel run every rank measures its part of each split (each
        rank ends with the same metrics) and rank 0 alone writes.
        """
        if is_main():
            save_model(self.model, self.dir, self.data.spec.to_dict())
        evaluator = evaluate if self.shard is None else self.shard.evaluate
        self.metrics = {**split_metrics(self.model, self.data, self.device, self.loss_fn, evaluator),
                        **self.metrics}
        self.metrics.update(self._status())
        if getattr(self.model, "init_report", None) is not None:  # model.init=pretrained: what was loaded
            self.metrics["pretrained"] = self.model.init_report
        write_json(self.dir / "metrics.json", self.metrics)
        val = self.metrics["val"]
        for f in self.audit_findings:  # what the imbalance did: the minority classes' recall on validation
            if f.symptom == "class_imbalance" and val.get("per_class_recall"):
                f.evidence["minority_val_recall"] = {str(c): val["per_class_recall"][c]  # JSON keys
                                                     for c in f.evidence["minority_classes"]}
        if self.diagnosis:
            if self.attempt.kind is not Kind.RESUME:  # with the imbalance's minority recall, known now
                self.diagnosis["audit"] = [f.to_dict() for f in self.audit_findings]
            write_json(self.dir / "diagnosis.json", self.diagnosis)


def _checked(cfg: Config, data: Data, findings: list[Finding]) -> Data:
    """The data without rows no model can train on (dropped with ``doctor.repair``, else refused)."""
    bad = prepare.bad_rows(data)
    if bad and cfg.doctor.enabled and cfg.doctor.repair:
        return prepare.drop_bad_rows(data, bad, findings)
    if bad:
        raise prepare.refuse_bad_rows(bad, data, cfg.doctor.enabled)
    return data


def _grown(cfg: Config, data: Data) -> Data:
    """The training split resampled and with extra rows, as the config says."""
    if cfg.data.imbalance.method not in ("none", "balanced_sampler"):
        data = prepare.resample(data, cfg)
    return prepare.expand(data, cfg)


def run_attempt(a: Attempt) -> Outcome:
    """Train one attempt (see :class:`Attempt`). Bad input raises before anything is written."""
    threads = torch.get_num_threads()
    if a.cfg.train.threads is not None:  # the process's thread count is the caller's: put back after
        torch.set_num_threads(a.cfg.train.threads)
    try:
        return _run_attempt(a)
    finally:
        torch.set_num_threads(threads)


def _run_attempt(a: Attempt) -> Outcome:
    cfg = a.cfg
    device = start(device_of(cfg.train.device))  # under torchrun: joins the run's process group
    world = world_size()
    if cfg.log.tensorboard:  # a missing extra is refused before anything is written
        require_tensorboard()
    show = (cfg.train.progress if a.progress is None else a.progress) and is_main()
    # The run's randomness is its own: seeded here, the caller's RNG state is restored after.
    # Several processes leave signals to torchrun's agent, which stops them all at once.
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []), \
            SignalGuard(a.handle_signals and world == 1) as guard:
        torch.manual_seed(cfg.seed)
        data = prepare.configured_data(cfg.data) if a.data is None else a.data
        loaded = data
        findings: list[Finding] = list(a.audit)
        if a.kind in (Kind.FRESH, Kind.RESTART) and cfg.doctor.enabled:
            findings = audit(data.train, data.val, data.test, n_classes=data.n_classes,
                             standardized=cfg.data.standardize and data.kind != "sequence",
                             balanced=cfg.data.imbalance.method != "none" or cfg.loss == "weighted_cross_entropy")
        if a.kind is not Kind.GO_ON:
            data = _checked(cfg, data, findings)
        spec = data.spec  # before resampling: its class counts weight the loss
        if a.kind is not Kind.GO_ON:
            data = _grown(cfg, data)
        augment = prepare.make_augment(data, cfg)
        model = build(cfg, spec, *((data.mean, data.std) if cfg.data.standardize else (None, None))).to(device)
        optimizer = build_optimizer(model, cfg.optim, cfg.reg)
        if world > 1:
            _check_parallel(cfg, optimizer, len(data.train), world)
        new_schedule = a.kind is Kind.GO_ON and "LRSchedule" not in a.state["trainer"]["callbacks"]
        done = a.state["trainer"]["epoch"] if new_schedule else 0  # a schedule a repair added spans the epochs left
        schedule = build_schedule(optimizer, cfg.schedule, cfg.train.epochs - done)
        loss_fn = make_run_loss(cfg, spec)
        if a.kind is Kind.RESUME:
            run_dir = Path(a.out)
        else:  # only now: bad input writes nothing
            run_dir = on_main(lambda: new_run_dir(a.out, cfg.run_name)) if a.kind is Kind.FRESH else Path(a.out)
            if is_main():  # rank 0 alone writes the run's files
                atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        if cfg.doctor.enabled and a.kind is not Kind.RESUME:  # the audit of the start, kept by a resume
            write_json(run_dir / "diagnosis.json", {"audit": [f.to_dict() for f in findings], **a.record})
        for finding in findings:
            say(show, str(finding))
        trainer, doctor, good, stopper = _trainer(a, model, optimizer, loss_fn, data, device, run_dir, augment, schedule,
                                         show, guard)
        _load_state(a, model, optimizer, trainer, run_dir)
        if a.state is not None and is_main():  # the epochs done so far
            atomic_write_text(run_dir / "history.jsonl", "".join(_json_line(h) for h in trainer.history))
        started = time.perf_counter()
        # a problem of the data that the repair can fix (unscaled inputs, imbalance) is fixed before any training
        fix_first = doctor is not None and cfg.doctor.repair and cfg.doctor.max_repairs > 0 \
            and a.kind is not Kind.GO_ON and plan_repair(findings, cfg) is not None
        history = [] if fix_first else trainer.fit()
        seconds = time.perf_counter() - started
    if doctor is not None and stopper is not None and stopper.restore_best:
        _treated_by_early_stopping(doctor.findings, stopper)
    # the best epoch is early stopping's when it watches (its monitor, the weights it restores), else by val loss
    stopped = stopper is not None and stopper.tracker.best_epoch is not None
    best = stopper.tracker.best_epoch if stopped else best_epoch(history)
    metrics: dict[str, Any] = {"best_epoch": best, "best_epoch_by": stopper.tracker.monitor if stopped else "val_loss",
                               "epochs_run": len(history),
                               "train_seconds": seconds, "n_parameters": count_parameters(model)}
    diagnosis: dict[str, Any] = {}
    if doctor is not None:
        diagnosis = {"audit": previous_audit(run_dir) if a.kind is Kind.RESUME else [f.to_dict() for f in findings],
                     "findings": [f.to_dict() for f in doctor.findings],
                     "notes": doctor.doctor.notes if doctor.doctor is not None else [], **a.record}
        if world > 1:  # each rank's doctor watched its own rows: rank 0 reports for all
            diagnosis = _merged(all_gather(diagnosis), show)
    return Outcome(a, run_dir, history, metrics, diagnosis, model, data, loaded, good, findings, device, loss_fn,
                   stopper, trainer.shard)


def _check_parallel(cfg: Config, optimizer: torch.optim.Optimizer, rows: int, world: int) -> None:
    """What several processes cannot train, refused in one line before anything is written."""
    if getattr(optimizer, "needs_closure", isinstance(optimizer, torch.optim.LBFGS)):
        raise TrainwellError(f"optim.name={cfg.optim.name} re-evaluates the loss within a step, which each of "
                             f"the {world} processes would do on its own rows; train it on one process")
    problem = check_batches(rows, cfg.data.batch_size, world)
    if problem is not None:
        raise TrainwellError(problem)


def _merged(diagnoses: list[dict[str, Any]], show: bool) -> dict[str, Any]:
    """Rank 0's diagnosis with the findings that only other ranks made (their rank in the evidence), said
    by rank 0; every rank gets the same."""
    merged = diagnoses[0]
    known = {(f["symptom"], f.get("layer")) for f in merged["findings"]}
    for rank, other in enumerate(diagnoses[1:], start=1):
        for f in other["findings"]:
            if (f["symptom"], f.get("layer")) not in known:
                known.add((f["symptom"], f.get("layer")))
                f = {**f, "evidence": {**(f.get("evidence") or {}), "rank": rank}}
                merged["findings"].append(f)
                say(show, f"rank {rank}: {Finding(**f)}")
    return merged


def _treated_by_early_stopping(findings: list[Finding], stopper: EarlyStopping) -> None:
    """Overfitting in a run whose early stopping restores the best weights is already treated: info, not a
    warning whose remedy (early stopping) the run has."""
    for f in findings:
        if f.symptom == "overfitting" and f.severity != "info":
            f.severity = "info"
            f.remedy = (f"none needed: early stopping (patience {stopper.patience}) ends the run with the weights "
                        f"of epoch {stopper.tracker.best_epoch}")


def _json_line(h: dict[str, Any]) -> str:
    return json.dumps(h) + "\n"


def _trainer(a: Attempt, model, optimizer, loss_fn, data: Data, device: torch.device, run_dir: Path,
             augment, schedule, show: bool, guard: SignalGuard
             ) -> tuple[Trainer, DoctorCallback | None, LastGoodState | None, EarlyStopping | None]:
    """The trainer of an attempt with its callbacks, in the order they must run."""
    cfg = a.cfg
    c = cfg.checkpoint
    main = is_main()  # rank 0 alone writes files (checkpoints, history, TensorBoard, the doctor's record)
    checkpoint = Checkpoint(run_dir / "checkpoints", config_digest(cfg.to_yaml()), every_steps=c.every_steps,
                            every_epochs=c.every_epochs, keep=c.keep, best=c.best) \
        if (c.every_steps or c.every_epochs or c.best) and main else None
    e = cfg.early_stopping
    stopper = EarlyStopping(e.monitor, e.mode, e.min_delta, e.patience, e.restore_best) if e.enabled else None
    tensorboard = TensorBoardLogger(run_dir / "tensorboard") if cfg.log.tensorboard and main else None
    if tensorboard is not None and a.kind in (Kind.GO_ON, Kind.RESTART) and a.record.get("repairs"):
        tensorboard.text("doctor/repairs", _repair_line(a.record["repairs"][-1]))  # at the step it starts from

    def found(f: Finding) -> None:
        say(show, str(f))
        if tensorboard is not None:
            tensorboard.text("doctor/findings", str(f), f.step)

    doctor = DoctorCallback(cfg.doctor.every, on_finding=found,
                            stop_when=(lambda f: repairable(f, cfg)) if cfg.doctor.repair else None,
                            patience=e.patience, monitor=e.monitor, mode=e.mode, min_delta=e.min_delta,
                            record=run_dir / "stats.jsonl" if cfg.doctor.record and main else None) \
        if cfg.doctor.enabled else None
    good = LastGoodState(without=(DoctorCallback, Checkpoint)) \
        if doctor is not None and cfg.doctor.repair and cfg.doctor.max_repairs > 0 else None
    shard = Shard(model, cfg.seed) if world_size() > 1 else None  # DDP: every rank its part of each batch
    forward = teacher_forcing if data.kind == "sequence" else None
    trainer = Trainer(model, optimizer, loss_fn, data.train.to(device), data.val.to(device),
                      epochs=cfg.train.epochs, batch_size=cfg.data.batch_size,
                      generator=torch.Generator().manual_seed(cfg.seed), shard=shard,
                      forward=forward if shard is None else shard.forward(forward),
                      row_weights=balanced_row_weights(data.train.y)
                      if cfg.data.imbalance.method == "balanced_sampler" else None,
                      callbacks=[*([augment] if augment else []),
                                 *([GradientClipping(cfg.clip.max_norm, cfg.clip.value)]
                                   if cfg.clip.max_norm or cfg.clip.value else []),
                                 *([doctor] if doctor else []),
                                 *([schedule] if schedule else []),
                                 *([stopper] if stopper else []),
                                 *([HistoryFile(run_dir / "history.jsonl")] if main else []),
                                 *([tensorboard] if tensorboard else []),  # before the checkpoint: what it saw
                                 *([checkpoint] if checkpoint else []),
                                 *([ProgressBar(cfg.run_name)] if show else []), *a.callbacks,
                                 *([good] if good else []),  # after the doctor: an epoch it stopped is not kept
                                 *([StopOnSignal(guard, checkpoint, run_dir)] if guard.enabled else [])])
    return trainer, doctor, good, stopper


def _repair_line(r: dict[str, Any]) -> str:
    """A repair record as the line the repair loop prints."""
    cause = f" ({r['cause']})" if r.get("cause") else ""
    start = f"from epoch {r['from_epoch']} (its last good state)" if r.get("from_epoch") else "from scratch"
    return f"repair {r['attempt']}: {r['symptom']}{cause} -> {' '.join(r['changes'])}, {start}"


def _load_state(a: Attempt, model: nn.Module, optimizer: torch.optim.Optimizer, trainer: Trainer,
                run_dir: Path) -> None:
    """Load a resumed checkpoint, or a kept state a repair goes on from with the new rate."""
    if a.kind is Kind.RESUME:
        try:
            model.load_state_dict(a.state["model"])
            optimizer.load_state_dict(a.state["optimizer"])
            trainer.load_state_dict(_for_this_rank(a.state["trainer"]))
        except (KeyError, RuntimeError, ValueError) as err:
            raise TrainwellError(f"the checkpoint in {run_dir} does not fit this run: "
                                 f"{str(err).splitlines()[0]}") from None
        restore_rng(a.state["rng"])
    elif a.kind is Kind.GO_ON:
        _go_on(a.state, a.lr_scale, model, optimizer, trainer)


# Callbacks that rank 0 alone has (they write files or print): rank 0's checkpoint holds their states.
RANK_0_ONLY = (Checkpoint, HistoryFile, TensorBoardLogger, ProgressBar)


def _for_this_rank(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's trainer state (rank 0's) without the states of rank 0's own callbacks, on the others."""
    if is_main():
        return state
    names = {cls.__qualname__ for cls in RANK_0_ONLY}
    return {**state, "callbacks": {key: value for key, value in state["callbacks"].items()
                                   if key.split("#")[0] not in names}}


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
            cb.scale(lr_scale)          # rates they started from and last set are scaled too
    restore_rng(state["rng"])
