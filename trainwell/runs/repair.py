"""A whole run: config in, run directory out, with the doctor's repairs (seed 004's process end to end).

:func:`train` runs one attempt (:mod:`trainwell.runs.attempt`); with
``doctor.repair`` each attempt whose findings have a remedy is replaced by
another with the remedy applied as config changes (:mod:`trainwell.runs.remedies`),
up to ``doctor.max_repairs`` times. A repair whose changes are only the
optimiser's settings goes on from the last good state when that state had
learnt something; others start again from scratch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.config import Config, apply_overrides, resolve_config
from trainwell.data import Data
from trainwell.doctor import Finding
from trainwell.errors import TrainwellError
from trainwell.io import DISK_ERRORS
from trainwell.loop import Callback, LastGoodState
from trainwell.loop.checkpoint import config_digest, latest_intact_checkpoint
from trainwell.loop.distributed import broadcast, is_main
from trainwell.optim.lr_find import lr_range_test
from trainwell.optim.registry import build_optimizer
from trainwell.runs.attempt import Attempt, Kind, Outcome, device_of, findings_of, run_attempt, teacher_forcing
from trainwell.runs.console import say
from trainwell.runs.directory import clear_attempt, previous_repairs, read_run, write_json
from trainwell.runs.evaluation import build, make_run_loss
from trainwell.runs.prepare import record_data
from trainwell.runs.remedies import plan_repair

__all__ = ["Run", "train"]


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

    @property
    def findings(self) -> list[Finding]:
        """The audit's and the doctor's findings (the last attempt's, after repairs)."""
        return findings_of(self.diagnosis)


def _resume_state(run_dir: Path, config: Any, overrides: Sequence[str]) -> tuple[Config, dict[str, Any]]:
    run_dir, saved = read_run(run_dir)
    if config is not None or overrides:
        given = resolve_config(config)
        if overrides:
            given = apply_overrides(given, overrides)
        if given != saved:
            raise TrainwellError(f"--resume continues {run_dir} with its own config.yaml; "
                                 "the config given differs from it (leave it out, or start a new run)")
    if (run_dir / "metrics.json").exists():
        raise TrainwellError(f"{run_dir} already finished (metrics.json exists); nothing to resume")
    found = latest_intact_checkpoint(run_dir / "checkpoints", config_digest(saved.to_yaml()))
    if found is None:
        raise TrainwellError(f"no checkpoint in {run_dir / 'checkpoints'} to resume from")
    if found.skipped:  # a truncated latest file (a full disk, a copy cut short): said even when quiet
        line = found.fallback_line()
        if is_main():  # one process renames (the others find the same intact file)
            found.set_aside()
        say(True, line, one_line=True)
    return saved, found.state


def train(config: Config | dict[str, Any] | str | Path | None = None, *, overrides: Sequence[str] = (),
          out: str | Path | None = None, callbacks: Sequence[Callback] = (),
          progress: bool | None = None, resume: str | Path | None = None, data: Data | None = None,
          handle_signals: bool = False) -> Run:
    """Run the whole training process from a config and write a run directory.

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
        handle_signals: on SIGINT or SIGTERM, write a checkpoint and raise
            :class:`Interrupted` (a second signal stops at once). Off by default:
            a library leaves the process's handlers alone; the ``trainwell``
            command turns it on. The previous handlers are restored on return.

    Returns:
        A :class:`Run` with the directory, resolved config, history, metrics, model and diagnosis.

    Raises:
        TrainwellError: invalid config, data set or model choice, or an unusable
            checkpoint; nothing is written. Also a file system that refuses a file (full,
            read-only, not permitted): the file and the cause in one line, earlier checkpoints intact.
        Interrupted: with ``handle_signals``, SIGINT or SIGTERM arrived; a checkpoint was written first.

    Example:
        >>> run = train({"data": {"name": "moons"}, "train": {"epochs": 5}}, out="runs/moons")
        >>> run.metrics["test"]["accuracy"]  # doctest: +SKIP
    """
    try:
        if resume is not None:
            cfg, state = _resume_state(Path(resume), config, overrides)
            first = Attempt(Kind.RESUME, cfg, out=resume, data=data, state=state)
        else:
            cfg = resolve_config(config)
            if overrides:
                cfg = apply_overrides(cfg, overrides)
            cfg = record_data(cfg, data)  # the data file's sha256 and shape, or data.name: custom
            first = Attempt(Kind.FRESH, cfg, out=out, data=data)
        first.callbacks, first.progress, first.handle_signals = tuple(callbacks), progress, handle_signals
        return _repair_loop(first, data)
    except OSError as err:
        if err.errno not in DISK_ERRORS:
            raise
        raise TrainwellError(f"cannot write {err.filename or 'a file of the run'}: {err.strerror}; "
                             "the checkpoints written before are intact") from None


def _repair_loop(first: Attempt, given: Data | None) -> Run:
    """Attempts until no repair follows; every repair recorded in diagnosis.json as it starts."""
    cfg = first.cfg
    repairs: list[dict[str, Any]] = []
    config_given = cfg.model_dump(mode="json")
    if first.kind is Kind.RESUME:  # an interrupted repaired run: its repairs so far, and what the user gave
        repairs, config_given = previous_repairs(Path(first.out))
        config_given = config_given or cfg.model_dump(mode="json")
        first.record = {"repairs": repairs, "config_given": config_given} if repairs else {}
    tried: list[list[str]] = [r["changes"] for r in repairs]
    finished = False
    outcome = run_attempt(first)
    while (plan := _next_plan(outcome, cfg, tried, len(repairs))) is not None:
        finding, changes = plan
        tried.append(changes)
        before = _record(outcome, outcome.val_accuracy)
        good = going_on_from(outcome.good, cfg, changes)
        current_lr = cfg.optim.lr
        cfg = apply_overrides(cfg, changes)
        range_test = None
        if cfg.optim.lr != current_lr:  # a learning-rate remedy: size it by a range test on the new set-up
            # every process of a data-parallel run goes on with rank 0's rate
            range_test = broadcast(range_test_for(cfg, outcome.data, current_lr, state=good.state if good else None))
            if range_test["used"]:
                changes = [c for c in changes if not c.startswith("optim.lr=")] + \
                    [f"optim.lr={range_test['suggestion']:.4g}"]
                cfg = apply_overrides(cfg, changes[-1:])
        start = f"from epoch {good.epoch} (its last good state)" if good else "from scratch"
        say(first.cfg.train.progress if first.progress is None else first.progress,
            f"repair {len(repairs) + 1}: {finding.symptom}{f' ({finding.cause})' if finding.cause else ''} -> "
            f"{' '.join(changes)}, {start}")
        clear_attempt(outcome.dir)
        repairs.append({"attempt": len(repairs) + 1, "symptom": finding.symptom, "cause": finding.cause,
                        "layer": finding.layer, "changes": changes, "from_epoch": good.epoch if good else 0,
                        **({"lr_range_test": range_test} if range_test else {}), "before": before})
        common = dict(out=outcome.dir, callbacks=first.callbacks, progress=first.progress,
                      handle_signals=first.handle_signals,
                      record={"repairs": repairs, "config_given": config_given})
        if good is not None:  # on the data that state trained on (resampled, augmented: not again)
            loaded = outcome.loaded
            outcome = run_attempt(Attempt(Kind.GO_ON, cfg, data=outcome.data, state=good.state,
                                          audit=[Finding(**f) for f in outcome.diagnosis.get("audit", [])],
                                          lr_scale=cfg.optim.lr / current_lr, **common))
            outcome.loaded = loaded
        else:
            same_data = given if given is not None or any(c.startswith("data.") for c in changes) else outcome.loaded
            outcome = run_attempt(Attempt(Kind.RESTART, cfg, data=same_data, **common))
        if _next_plan(outcome, cfg, tried, len(repairs)) is None:
            outcome.finish()
            finished = True
            repairs[-1]["after"] = _record(outcome)
        else:
            repairs[-1]["after"] = _record(outcome, outcome.val_accuracy)
    if not finished:  # no repair was made: the first attempt is the run
        outcome.finish()
        if repairs and "after" not in repairs[-1]:  # a resumed repaired attempt, now finished
            repairs[-1]["after"] = _record(outcome)
    in_place = [f for f in outcome.findings if f.repaired is not None]
    repairs += [{"attempt": len(repairs) + 1, "symptom": f.symptom, "cause": f.cause, "layer": f.layer,
                 "changes": [f.repaired], "after": _record(outcome)} for f in in_place]
    if repairs:
        outcome.diagnosis.update(repairs=repairs, config_given=config_given)
        write_json(outcome.dir / "diagnosis.json", outcome.diagnosis)
    return Run(outcome.dir, cfg, outcome.history, outcome.metrics, outcome.model, outcome.diagnosis, outcome.data)


def _next_plan(outcome: Outcome, cfg: Config, tried: list[list[str]], done: int) -> tuple[Finding, list[str]] | None:
    """The repair that follows an attempt made after ``done`` repairs, if any."""
    if not (cfg.doctor.enabled and cfg.doctor.repair and done < cfg.doctor.max_repairs):
        return None
    return plan_repair(outcome.findings, cfg, tried)


def _record(outcome: Outcome, val_accuracy: float | None = None) -> dict[str, Any]:
    """An attempt in a repair record: its validation accuracy, length, time and findings above info."""
    accuracy = outcome.metrics["val"]["accuracy"] if val_accuracy is None else val_accuracy
    return {"val_accuracy": accuracy, "epochs_run": outcome.metrics["epochs_run"],
            "train_seconds": outcome.metrics["train_seconds"],
            "findings": [f"{f.severity}:{f.symptom}" for f in outcome.findings if f.severity != "info"]}


# Remedies that change only how the optimiser steps: the model and the data stay, so a repair can go on.
OPTIMISER_KEYS = ("optim.lr", "clip.max_norm", "clip.value", "schedule.name")
# Updates a kept state needs behind it to count as good: the doctor finds a problem that is there from the start
# (a rate too high from step 0) within about this many, so an earlier state was reached under the problem.
GOOD_AFTER_UPDATES = 50


def going_on_from(good: LastGoodState | None, cfg: Config, changes: list[str]) -> LastGoodState | None:
    """The kept state a repair goes on from, or None to start again from scratch.

    Only when every change is one of the optimiser's settings (and none of the
    schedule's when the run has one: its place in another schedule would mean
    nothing; a schedule it has is scaled with the rate), and the kept epoch is
    good: at least ``GOOD_AFTER_UPDATES`` updates in (a state reached sooner
    was reached under a problem that was there from the start) and with a
    training loss below 0.9 of the first epoch's. A state that learnt nothing
    (a rate too low) is no better than a fresh start, which gets the whole
    epoch budget.
    """
    if good is None or good.state is None or good.epoch >= cfg.train.epochs \
            or good.state["trainer"]["step"] < GOOD_AFTER_UPDATES:
        return None
    if any(c.split("=", 1)[0] not in OPTIMISER_KEYS for c in changes):
        return None
    scheduled = cfg.schedule.name != "none" or cfg.schedule.warmup_epochs
    if scheduled and any(c.startswith("schedule.") for c in changes):
        return None
    return good if good.train_loss < 0.9 * good.first_train_loss else None


def range_test_for(cfg: Config, data: Data, current_lr: float, steps: int = 60, below: float = 1e2,
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
    device = device_of(cfg.train.device)
    spec = data.spec
    n, size = len(data.train), min(cfg.data.batch_size, len(data.train))
    steps = max(min(steps, cfg.train.epochs * -(-n // size) // 4), 15)
    delay = max(round(0.15 * steps), 1)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        model = build(cfg, spec, *((data.mean, data.std) if cfg.data.standardize else (None, None))).to(device)
        optimizer = build_optimizer(model, cfg.optim, cfg.reg)
        if state is not None:  # torch's load_state_dict keeps the given buffers: the test must not step those
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        x, y = data.train.x.to(device), data.train.y.to(device)
        order = torch.cat([torch.randperm(len(y)) for _ in range(steps * size // len(y) + 1)])
        batches = [(x[i], y[i]) for i in order[:steps * size].split(size)]
        try:
            test = lr_range_test(model, optimizer, make_run_loss(cfg, spec), batches, start_lr=estimate / below,
                                 end_lr=estimate * above, steps=steps, smoothing=delay / (delay + 1),
                                 max_norm=cfg.clip.max_norm,
                                 forward=teacher_forcing if data.kind == "sequence" else None)
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
