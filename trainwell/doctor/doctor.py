"""The doctor: watches a training run, names what goes wrong and why (seed 002's summary).

Bad on the training data: vanishing gradients, the learning rate, or a bad
start; good on training but bad on validation: overfitting. The doctor checks
the mechanisms behind each (the rules below), on any PyTorch model, from a
hand-written loop (three added lines) or in trainwell's trainer::

    doctor = Doctor(model, optimizer)
    ...  loss.backward(); doctor.observe(loss, inputs=x, targets=y); optimizer.step()
    ...  doctor.end_epoch(train_loss=..., val_loss=..., train_acc=..., val_acc=...)
    doctor.findings; doctor.close()

Cost: the loss is checked for NaN on every step (one number); gradients,
activations and update sizes are measured on every ``every``-th step only.

The rules, their thresholds and why each has its value are in
:mod:`trainwell.doctor.thresholds`; the rules that judge whole epochs are in
:mod:`trainwell.doctor.epochs`.

The doctor never stops the user's training: any error inside it is caught,
said once, and the doctor carries on with what it can still measure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.doctor.blowups import BlowUpRules
from trainwell.doctor.epochs import EpochRules, bounded
from trainwell.doctor.findings import Finding
from trainwell.doctor.order import OrderRules
from trainwell.doctor.remedies import ScaleLR, SetInit, lower_rate, raise_rate
from trainwell.doctor.start import StartRules
from trainwell.doctor.record import HIST_BINS, HIST_EVERY, HIST_RANGE, HIST_VALUES, StatsRecorder
from trainwell.doctor.probes import (ActivationProbe, TimeProbe, UpdateProbe, layer_gradients,
                                     standardized_profile, weighted_layers)
from trainwell.doctor.thresholds import Thresholds
from trainwell.doctor.verdict import VerdictRules

__all__ = ["Doctor", "Thresholds"]


class Doctor(BlowUpRules, StartRules, EpochRules, VerdictRules, OrderRules):
    """Watches a model and its optimizer; ``findings`` lists what went wrong.

    Args:
        model: any ``nn.Module``.
        optimizer: its ``torch.optim.Optimizer`` (None, or one without step
            hooks: update sizes are not measured, and the doctor says so).
        every: measure gradients, activations and updates every N steps.
        thresholds: the rules' thresholds.
        on_finding: called with each new finding (the trainer prints them).
        total_steps: the run's planned number of updates, if known (the trainer passes it): steps
            too small to move the weights by 1% in the whole run are then a learning rate too low
            early, rather than after a plateau of 5 epochs; and the run is judged at its last epoch.
        loss_fn: the loss, ``f(output, y)``: the lint (:func:`~trainwell.doctor.lint`) checks model and loss
            at the first ``observe`` that has inputs and targets.
        n_classes: the data's classes (the lint checks the output width against it).
        record: a path: write every sample's per-layer measurements there, one JSON line each
            (:mod:`trainwell.doctor.record`; a new file, or on :meth:`load_state_dict` the lines before
            the restored step kept). Recording adds each activation's mean, std and histogram.

    Example:
        >>> with Doctor(model, optimizer) as doctor:  # doctest: +SKIP
        ...     for x, y in batches:
        ...         loss = F.cross_entropy(model(x), y)
        ...         optimizer.zero_grad(); loss.backward()
        ...         doctor.observe(loss, inputs=x, targets=y)
        ...         optimizer.step()
        >>> [f.symptom for f in doctor.findings]  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, optimizer: Any = None, *, every: int = 10,
                 thresholds: Thresholds | None = None,
                 on_finding: Callable[[Finding], None] | None = None, total_steps: int | None = None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 n_classes: int | None = None, record: str | Path | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model, self.optimizer, self.every, self.total_steps = model, optimizer, every, total_steps
        self.t = thresholds or Thresholds()
        self.on_finding = on_finding
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.step = 0
        self.epoch = 0
        self.layers = weighted_layers(model)
        self.acts = ActivationProbe(model, detail=record is not None, bins=HIST_BINS, span=HIST_RANGE,
                                    hist_values=HIST_VALUES)
        self.recorder = StatsRecorder(record) if record is not None else None
        self._recording = False  # the recorder's file is opened at the first observe (after a load_state_dict)
        self.last_sample: dict[str, Any] | None = None  # the latest recorded sample (a live view reads it)
        self.time = TimeProbe(model)
        self.updates = UpdateProbe(optimizer, self.layers) if optimizer is not None else None
        if not self.layers:
            self._note("the model has no weight matrices: gradient checks are off")
        if not self.acts.modules:
            self._note("no activation modules (nn.ReLU, nn.Sigmoid, ...) found, e.g. functional activations: "
                       "saturation, dead units and initialisation checks are off")
        if self.updates is None or not self.updates.available:
            self._note("no optimizer with step hooks: update sizes (learning-rate checks) are not measured")
        # Histories stay bounded (the first entry and a recent window) so that the state a checkpoint
        # writes every epoch does not grow with the length of the run.
        self._grads: list[dict[str, Any]] = []     # sampled gradient measurements
        self._update_ratios: list[list[float]] = []
        self._update_peak = 0.0                     # the largest median update size seen
        self._overshot: float | None = None         # the highest rate a step above update_high was measured at
        self._counts: dict[str, int] = {}           # consecutive samples a rule has held
        self._epochs: list[dict[str, float]] = []
        self._min_train_loss = math.inf
        self._best_val: tuple[float, int, float] | None = None  # (val loss, epoch from 1, train loss then)
        self._broken = False
        self._reported: set[str] = set()
        self._unsaid: list[Finding] = []
        self._lrs: list[float] | None = None  # the learning rates at the last update sample
        self._first_loss: float | None = None     # the mean loss of the first steps (see _check_jump)
        self._start_losses: list[float] = []
        self._recent_losses: list[float] = []
        self._init_verdict(loss_fn, n_classes)
        self._init_order()
        self._dead_last: dict[str, float] = {}  # the last window's dead shares
        self._windows = 0  # windows of dead units judged
        self._init_stds: dict[str, float] | None = None

    # ------------------------------------------------------------------ context

    def __enter__(self) -> Doctor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove every hook (the model and optimizer are as they were); the record is written out, and a
        suspected start is judged on the last loss if no epoch did."""
        if not self._broken:
            self._judge_start()
            self._judge_sum(closing=True)
            self._judge_order()
        if self.recorder is not None:
            self.recorder.close()
            if self.recorder.failed:
                self._note(self.recorder.failed)
        self.acts.close()
        self.time.close()
        if self.updates is not None:
            self.updates.close()

    # ------------------------------------------------------------------ reporting

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _found(self, symptom: str, severity: str, evidence: dict[str, Any], *, cause: str | None = None,
               layer: str | None = None) -> Finding | None:
        """Record a finding once per symptom."""
        if symptom in self._reported:
            return None
        self._reported.add(symptom)
        finding = Finding(symptom, severity, self.step, self.epoch + 1, evidence, cause, layer)
        self.findings.append(finding)
        self._unsaid.append(finding)  # said once complete: a rule may still size its remedy
        return finding

    def _say_new(self) -> None:
        """Hand the new findings, remedies sized, to ``on_finding`` (at the end of observe / end_epoch)."""
        unsaid, self._unsaid = self._unsaid, []
        for finding in unsaid if self.on_finding is not None else ():
            try:
                self.on_finding(finding)
            except Exception as err:  # the caller's callback must not stop the training either
                self._note(f"on_finding raised {type(err).__name__}: {err}")

    def has(self, symptom: str) -> bool:
        return symptom in self._reported

    def worst(self) -> str:
        """The highest severity found (``"none"`` if nothing)."""
        order = {"info": 0, "warning": 1, "error": 2}
        return max((f.severity for f in self.findings), key=order.__getitem__, default="none")

    # ------------------------------------------------------------------ per step

    def observe(self, loss: torch.Tensor | float, inputs: torch.Tensor | None = None,
                targets: torch.Tensor | None = None) -> None:
        """Look at one step: after ``loss.backward()``, before ``optimizer.step()``."""
        if self._broken:
            self.step += 1
            return
        try:
            self._observe(loss, inputs, targets)
        except Exception as err:  # the doctor must never stop the user's training
            self._broken = True
            self._note(f"the doctor stopped watching after an internal error: {type(err).__name__}: {err}")
            self.close()
        finally:
            self.step += 1
            self._arm()
            if self._unsaid:  # every step: no call when nothing was found
                self._say_new()

    def _arm(self) -> None:
        """The hooks record on sampled steps only; with a record, histograms and output spreads on every
        ``HIST_EVERY``-th of them (the picture needs no more, and they are most of what recording costs)."""
        self.acts.active = self.time.active = not self._broken and self.step % self.every == 0
        self.acts.detail = self.recorder is not None and self.step % (self.every * HIST_EVERY) == 0

    def go_to(self, step: int, epoch: int) -> None:
        """Watch on from ``step`` of epoch ``epoch`` (a loop that goes on from a kept state, with new settings)."""
        self.step, self.epoch = step, epoch
        self._arm()

    def _observe(self, loss: Any, inputs: torch.Tensor | None, targets: torch.Tensor | None) -> None:
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        sampled = self.step % self.every == 0
        if sampled:  # off the per-step path: a failed probe's hooks do nothing now, the training went on
            for probe, what in ((self.acts, "activation"), (self.time, "through-time"), (self.updates, "update-size")):
                if probe is not None and probe.failed:
                    self._note(f"the doctor's {what} measurements stopped after an internal error: {probe.failed}")
        if self.recorder is not None and not self._recording:
            self.recorder.start(self.step)
            self._recording = True
        if self.updates is not None and self.updates.ratios is not None and self.recorder is not None:
            self.recorder.updates([n for n, *_ in self.layers], self.updates.ratios)
        if not math.isfinite(value):
            if not self.has("nan_loss"):
                if self.recorder is not None:  # the blow-up's step is recorded, sampled or not
                    self._record(value, layer_gradients(self.layers) if self.layers else [],
                                 self.acts.collect() if sampled else {}, {})
                self._diagnose_nan(value, inputs, targets)
            self.acts.collect()
            self.time.collect()
            if self.updates is not None:  # measured before this step: attached to its sample above, used up
                self.updates.ratios = None
            return
        self._observe_start(inputs, targets)
        self._check_jump(value, inputs)
        if self.updates is not None and self.updates.ratios is not None:
            self._update_ratios = bounded(self._update_ratios + [self.updates.ratios])
            finite = [r for r in self.updates.ratios if math.isfinite(r)]
            if finite:
                self._update_peak = max(self._update_peak, statistics.median(finite))
                if statistics.median(finite) > self.t.update_high:
                    rate = max(self._rates() or [math.inf])
                    self._overshot = rate if self._overshot is None else max(self._overshot, rate)
            self.updates.ratios = None
            self._check_updates()
            self._judge_sum()
        if sampled:
            self._watch_order(targets)
            acts = self.acts.collect(self.t.dead_rows)
            window = {n: a["dead"] for n, a in acts.items() if "dead" in a}
            if window:  # units 0 on every row of the window's batches
                self._dead_last, self._windows = window, self._windows + 1
            if self.step == 0 and inputs is not None:  # the start judged on standardised inputs (see _init_profile)
                self._init_stds = standardized_profile(self.model, self.acts, inputs, targets, self.forward)
            if self.acts.skipped:
                self._note(f"outputs of {', '.join(sorted(self.acts.skipped))} are not tensors (tuples, dicts): "
                           "their units are not measured")
            through = self.time.collect()
            if self.time.skipped:
                self._note(f"inputs of {', '.join(sorted(self.time.skipped))} are not (batch, time, features) "
                           "tensors (packed or unbatched sequences): their gradient through time is not measured")
            if through:  # before the layers' check: through time it can name the recurrent start as the cause
                self._check_time(through)
            grads = layer_gradients(self.layers) if self.layers else []
            if self.recorder is not None:
                self._record(value, grads, acts, through)
            if grads:
                self._check_gradients(grads, acts)
            if acts:
                self._check_activations(acts)
            if self.updates is not None and self.updates.available:
                self.updates.armed = True

    def _record(self, loss: float, grads: list[tuple[float, float] | None], acts: dict[str, dict[str, Any]],
                through: dict[str, tuple[float, float]]) -> None:
        """One sample for ``stats.jsonl`` (its update size follows at the next step)."""
        kinds = {n: k for n, _, k in self.acts.modules}
        sample: dict[str, Any] = {
            "step": self.step, "epoch": self.epoch + 1, "loss": loss,
            "layers": {name: {"grad_rms": m[0], "weight_rms": m[1]}
                       for (name, *_), m in zip(self.layers, grads) if m is not None},
            "activations": {n: {"kind": kinds.get(n), **a} for n, a in acts.items()}}
        if through:
            sample["time"] = {n: {"first": a, "last": b} for n, (a, b) in through.items()}
        self.last_sample = sample
        self.recorder.add(sample)

    def flush_record(self) -> None:
        """Write the pending sample to the record now, with its update size if the step after it was taken."""
        if self.recorder is None:
            return
        if self.updates is not None and self.updates.ratios is not None:
            self.recorder.updates([n for n, *_ in self.layers], self.updates.ratios)
        self.recorder.flush()

    def _held(self, key: str, condition: bool) -> int:
        """Consecutive samples on which ``condition`` held, for rule ``key``."""
        self._counts[key] = self._counts.get(key, 0) + 1 if condition else 0
        return self._counts[key]

    def _check_gradients(self, measured: list[tuple[float, float] | None],
                         acts: dict[str, dict[str, float]] | None = None) -> None:
        present = [(i, g, w) for i, m in enumerate(measured) if m is not None for g, w in [m]]
        if not present:
            return
        overall = math.sqrt(sum(g * g for _, g, _ in present) / len(present))
        (first_i, first, _), (_, last, _) = present[0], present[-1]
        ratio = first / last if last > 0 else (math.inf if first > 0 else 1.0)
        self._grads = bounded(self._grads + [{"step": self.step, "rms": overall, "ratio": ratio}])
        start = self._grads[0]["rms"]
        growth = overall / start if start > 0 else 1.0
        name = self.layers[first_i][0]
        evidence = {"grad_rms_first_layer": first, "grad_rms_last_layer": last, "ratio": ratio,
                    "grad_rms": overall, "growth_since_start": growth}
        # the back-propagated gradient at the first activation / at the last (Glorot & Bengio 2010: with a
        # too-small start it shrinks layer by layer while the weight gradients keep their ratio, because the
        # last layer's weight gradient is as small as the activations it multiplies)
        states = [a["state_grad"] for a in (acts or {}).values() if "state_grad" in a]
        # exactly 0 at the first activation is a gradient stopped (dead units, a detach), not one that shrank
        state_ratio = states[0] / states[-1] if len(states) > 1 and states[-1] > 0 and states[0] > 0 else None
        if state_ratio is not None:
            evidence["state_grad_ratio"] = state_ratio
        dead = self._dead_layer(acts)  # dead units stop the gradient outright: that is dead_relu
        vanishing = (ratio < self.t.vanishing_ratio and not (first == 0 and dead)) or \
            (state_ratio is not None and state_ratio < self.t.vanishing_state_ratio and not dead)
        if not math.isfinite(overall):
            self._found("exploding_gradients", "error", evidence, layer=name, cause="non_finite_gradients")
        elif len(present) > 1 and self._held("vanishing", vanishing) >= self.t.persist:
            cause = self._vanishing_cause(present)
            self._found("vanishing_gradients", "warning", evidence, layer=name, cause=cause)
        elif self._held("exploding", ratio > self.t.exploding_ratio) >= self.t.persist \
                or overall > self.t.exploding_rms or (growth > self.t.exploding_growth and overall > 1.0):
            self._found("exploding_gradients", "warning" if ratio > self.t.exploding_ratio else "error",
                        evidence, layer=name, cause="depth" if ratio > self.t.exploding_ratio else
                        ("bad_initialisation" if self._start_to_blame() else None))

    def _vanishing_cause(self, present: list[tuple[int, float, float]]) -> str | None:
        """The cause the measurements show: the start, a saturating activation, batch norm on tiny batches,
        or depth - a gradient that shrinks layer after layer over four or more of them - else none."""
        if self._start_to_blame():
            return "bad_initialisation"
        if self.has("small_batch_norm"):
            return "small_batch_norm"
        if any(k in ("sigmoid", "tanh") for *_, k in self.acts.modules):
            return "saturating_activation"
        grads = [g for _, g, _ in present]
        shrinking = len(grads) >= 4 and all(a < b for a, b in zip(grads, grads[1:]))
        return "depth" if shrinking else None

    def _check_time(self, through: dict[str, tuple[float, float]]) -> None:
        """Gradients exploding through time: a recurrent layer's first time step gets 10x the last's gradient."""
        ratios = {n: a / b for n, (a, b) in through.items() if b > 0 and math.isfinite(a) and math.isfinite(b)}
        if not ratios:
            return
        name = max(ratios, key=ratios.get)
        # at step 0 the ratio is the initial recurrent weights' (one sample, as the initialisation check);
        # later it must hold on two samples in a row
        from_start = self.step == 0
        if self._held("exploding_time", ratios[name] > self.t.exploding_time_ratio) < (1 if from_start else
                                                                                        self.t.persist):
            return
        first, last = through[name]
        finding = self._found("exploding_gradients", "warning",
                              {"grad_rms_first_time_step": first, "grad_rms_last_time_step": last,
                               "ratio_through_time": ratios[name]},
                              layer=name, cause="bad_initialisation" if from_start else "recurrence")
        if finding is not None and from_start:  # the recurrent matrix's start makes each step's factor > 1
            finding.remedies = [SetInit("orthogonal")]
            finding.remedy = "start the recurrent weights orthogonal: each time step's factor then keeps the " \
                             "gradient's size (where the start must stay, clip the gradient's global norm)"

    def _dead_layer(self, acts: dict[str, dict[str, float]] | None) -> bool:
        """Whether a layer's units are mostly dead (with a first-layer gradient of exactly 0, they stopped it)."""
        # before the first window is complete, one batch's dead units: enough to say a zero gradient was stopped
        # (the finding itself waits for the window)
        shares = self._dead_last.values() if self._windows else [a.get("dead_batch", 0.0) for a in (acts or {}).values()]
        return any(v > self.t.dead_share for v in shares)

    def _check_activations(self, acts: dict[str, dict[str, float]]) -> None:
        if self.step == 0 and len(acts) >= 2:
            self._check_start(self._init_stds or {n: a["pre_std"] for n, a in acts.items() if "pre_std" in a})
        for kind, symptom, share in (("saturated", "saturation", self.t.saturated_share),
                                     ("dead", "dead_relu", self.t.dead_share)):
            values = {n: a[kind] for n, a in acts.items() if kind in a}
            if not values:
                continue
            worst = max(values, key=values.get)
            if self._held(symptom, values[worst] > share) >= (1 if symptom == "dead_relu" else self.t.persist):
                cause = self._unit_cause(symptom)
                finding = self._found(symptom, "warning", {f"{kind}_share": values[worst], "per_layer": values},
                                      layer=worst, cause=cause)
                if cause == "learning_rate_too_high":
                    self._slow_down(finding)

    def _unit_cause(self, symptom: str) -> str | None:
        """Why units saturated or died: too large steps threw them there, or they started there."""
        if self._update_peak > self.t.update_high:
            return "learning_rate_too_high"
        since = self._windows if symptom == "dead_relu" else self.step // self.every + 1
        if self._counts.get(symptom, 0) >= since:  # held since the first sample (dead units: window)
            self._start_to_blame()
            return "bad_initialisation"
        return "saturating_activation" if symptom == "saturation" else None

    def _first_step_size(self) -> float:
        """The median update size of the first measured step, or the largest seen when there is none.

        A step's size is the learning rate times a function of the gradient; at
        the first step the gradient is the initial weights' and does not depend
        on the rate, so the size is proportional to it. Later steps of an
        unstable run are not: its gradients have already grown with the weights.
        """
        first = [r for r in self._update_ratios[0] if math.isfinite(r)] if self._update_ratios else []
        size = statistics.median(first) if first else 0.0
        return size if size > 0 else self._update_peak

    def _slow_down(self, finding: Finding | None) -> None:
        """Lower the rate so that the first step would have been ``step_target`` of the weights (at least 10x)."""
        size = self._first_step_size()
        if finding is None or size <= 0:
            return
        scale, finding.remedy = lower_rate(size, self._update_peak, self.t.step_target)
        finding.remedies = [r for r in finding.remedies if not isinstance(r, ScaleLR)] + [scale]

    def _lr_too_low(self, ratio: float, evidence: dict[str, Any]) -> None:
        """The remedy scales the rate so that steps come back to ``step_target`` of the weights."""
        finding = self._found("learning_rate_too_low", "warning", evidence)
        if finding is not None and ratio > 0:
            scale, finding.remedy = raise_rate(ratio, self.t.step_target)
            finding.remedies = [scale]

    def _check_updates(self) -> None:
        ratios = self._update_ratios[-1]
        finite = [r for r in ratios if math.isfinite(r)]
        if not finite:
            return
        median = statistics.median(finite)
        evidence = {"update_to_weight_median": median, "per_layer": ratios}
        # a first step far larger than the weights followed by steps less than half as large is Adam's first
        # step on small weights (lr per weight, bias-corrected), which the weights then outgrow: not a rate too high
        before = [r for r in self._update_ratios[-2] if math.isfinite(r)] if len(self._update_ratios) > 1 else []
        falling = bool(before) and median < 0.5 * statistics.median(before)
        if self._held("lr_high", median > self.t.update_high and not falling) >= self.t.persist:
            self._slow_down(self._found("learning_rate_too_high", "warning", evidence))
        moving = bool(self._grads) and self._grads[-1]["rms"] > 1e-8  # no gradient at all is another problem
        before, self._lrs = self._lrs, self._rates()
        # a rate that rose since the last sample is a warmup: small steps at its start are by design
        rising = before is not None and self._lrs is not None and any(b > a for a, b in zip(before, self._lrs))
        crawl = self._crawl(max(finite))
        evidence.update(crawl)
        if self._held("lr_low", moving and not rising and not self._collapsed()
                      and (max(finite) < self.t.update_low or bool(crawl))) >= self.t.persist:
            self._lr_too_low(median, evidence)

    def _collapsed(self) -> bool:
        """The same rate (within 10x) once made steps above ``update_high``: tiny steps now are the gradient's (the
        net collapsed after an overshoot), not the rate's, and a higher rate is no cure."""
        rates = self._rates()
        return self._overshot is not None and (rates is None or max(rates) >= 0.1 * self._overshot)

    def _rates(self) -> list[float] | None:
        """The optimizer's learning rates now (None without param_groups)."""
        groups = getattr(self.optimizer, "param_groups", None)
        return [float(g["lr"]) for g in groups if "lr" in g] if groups else None

    def _crawl(self, size: float) -> dict[str, float]:
        """Steps so small that the rest of the run cannot move the weights by ``run_move`` of their size.

        A step moves the weights by at most ``size`` of their size, so the
        ``left`` updates of the run by at most ``size * left``. Judged only in
        the run's first quarter: a decaying schedule ends with small steps by design.
        """
        if self.total_steps is None or self.step >= self.total_steps // 4:
            return {}
        left = self.total_steps - self.step
        return {"steps_left": left, "most_the_run_can_move": size * left} if size * left < self.t.run_move else {}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue the diagnosis (plain JSON values)."""
        return {"step": self.step, "epoch": self.epoch, "findings": [f.to_dict() for f in self.findings],
                "notes": list(self.notes), "grads": list(self._grads), "update_ratios": list(self._update_ratios),
                "update_peak": self._update_peak, "overshot": self._overshot, "counts": dict(self._counts),
                "epochs": list(self._epochs),
                "min_train_loss": self._min_train_loss, "best_val": self._best_val, "first_loss": self._first_loss,
                "start_losses": list(self._start_losses), "recent_losses": list(self._recent_losses),
                "reported": sorted(self._reported), "start_suspect": self._start_suspect}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.epoch = state["step"], state["epoch"]
        self.findings = [Finding(**f) for f in state["findings"]]
        self.notes = list(state["notes"])
        self._grads = list(state["grads"])
        self._update_ratios = [list(r) for r in state["update_ratios"]]
        self._counts = dict(state["counts"])
        self._update_peak = state["update_peak"]
        self._overshot = state.get("overshot")
        self._epochs = list(state["epochs"])
        self._min_train_loss = state["min_train_loss"]
        self._best_val = tuple(state["best_val"]) if state["best_val"] is not None else None
        self._first_loss = state["first_loss"]
        # a checkpoint from before the windowed check holds the first loss alone: a window of one step
        self._start_losses = list(state.get("start_losses", [] if self._first_loss is None else [self._first_loss]))
        self._recent_losses = list(state.get("recent_losses", []))
        self._reported = set(state["reported"])
        self._start_suspect = state.get("start_suspect")
        self._recording = False  # the record keeps the lines before this step
        self._arm()
