"""The doctor's rules on whole epochs: divergence, oscillation, plateaus, under- and overfitting.

:class:`EpochRules` is the part of :class:`~trainwell.doctor.Doctor` that
reads each epoch's summary (``end_epoch``); the per-step rules are in
:mod:`trainwell.doctor.doctor`, the thresholds in :mod:`trainwell.doctor.thresholds`.
"""

from __future__ import annotations

import math
import statistics

from trainwell.doctor.remedies import ScaleLR

__all__ = ["EpochRules", "bounded"]


def bounded(history: list, window: int = 20) -> list:
    """The first entry and the latest ``window`` ones."""
    return history if len(history) <= window + 1 else [history[0], *history[-window:]]


class EpochRules:
    """Per-epoch rules, mixed into :class:`~trainwell.doctor.Doctor` (which holds the state they read)."""

    def end_epoch(self, train_loss: float | None = None, val_loss: float | None = None,
                  train_acc: float | None = None, val_acc: float | None = None, **more: float) -> None:
        """Look at one epoch's summary (any of the numbers may be left out)."""
        self.flush_record()
        if self._broken:
            self.epoch += 1
            return
        try:
            record = {k: v for k, v in dict(train_loss=train_loss, val_loss=val_loss, train_acc=train_acc,
                                             val_acc=val_acc, **more).items() if v is not None}
            record = {k: float(v) for k, v in record.items()}
            record["at_step"] = float(self.step)  # updates so far: how long a rise lasted, in steps
            updates = self.step - (self._epochs[-1]["at_step"] if self._epochs else 0)
            if "seconds" in record and updates > 0:
                record["step_seconds"] = record["seconds"] / updates  # the epoch's pace, per update
            self._epochs = bounded(self._epochs + [record], 60)
            if math.isfinite(record.get("train_loss", math.nan)):
                self._min_train_loss = min(self._min_train_loss, record["train_loss"])
            val = record.get("val_loss", math.nan)
            if math.isfinite(val) and (self._best_val is None or val < self._best_val[0]):
                self._best_val = (val, self.epoch + 1, record.get("train_loss", math.nan))
            if self.step >= self.t.init_steps:  # a suspected start, judged by what the run learnt
                self._judge_start(record.get("train_loss"))
            self._check_epochs()
            self._check_step_time()
            self._judge_order()
            if self._verdict_due():  # the run's last epoch: judge how far it got
                self.finish()
        except Exception as err:
            self._broken = True
            self._note(f"the doctor stopped watching after an internal error: {type(err).__name__}: {err}")
            self.close()
        finally:
            self.epoch += 1
            self._say_new()

    def _fitted(self, losses: list[float], accs: list[float], halved: bool = False) -> bool:
        """The training data are (nearly) fitted: swings and plateaus from here on are noise, not a problem."""
        return (halved and losses[-1] < 0.5 * losses[0]) or (bool(accs) and accs[-1] >= self.t.fitted_accuracy)

    def _at_floor(self) -> bool:
        """The plateau is as far as the data allow: the model already beats a linear model on rows it trained on,
        and its validation loss is no further from its training loss than 10% (no gap left to close by
        fitting). Labels with noise stop a run there, at any accuracy."""
        self._reference = None  # the model now
        ref = self.progress()
        vals, losses = self._series("val_loss"), self._series("train_loss")
        close = bool(vals) and abs(vals[-1] - losses[-1]) <= 0.1 * max(losses[-1], 1e-12)
        return ref is not None and ref["progress_to_linear"] >= 1.0 and close

    def _spike(self, loss: float) -> bool:
        """The rising loss may still be a spike that comes back down, not a divergence.

        A rate near the stability edge makes the loss rise for some steps and
        then fall again, below where it was (the catapult of Lewkowycz et al.
        2020; the edge of stability of Cohen et al. 2021): such spikes last
        tens of updates and stay below the untrained model's loss. A rise above
        that loss has undone all training, and one over ``spike_steps`` updates
        is a trend; either is divergence.
        """
        if self._first_loss is None or loss > self._first_loss:
            return False
        ends = [(e["train_loss"], e["at_step"]) for e in self._epochs
                if math.isfinite(e.get("train_loss", math.nan)) and "at_step" in e]
        i = len(ends) - 1
        while i > 0 and ends[i][0] > ends[i - 1][0]:
            i -= 1
        return i < len(ends) - 1 and self.step - ends[i][1] < self.t.spike_steps

    def _check_oscillation(self, window: list[float]) -> None:
        """Swings around the run's own trend, larger than the gap between its training and validation curves.

        The median distance of each epoch's training loss from the line through
        its two neighbours measures the swings, not the descent; the window's mean gap between the
        validation and training losses is how much a loss moves for reasons that
        are not the steps (the data's noise floor, a small validation set): a
        run at its noise floor swings less than that, an overshooting one more.
        Swings below a tenth of the descent the run has made are noise about a
        solution it has found.
        """
        t = self.t
        n = len(window)
        diffs = [b - a for a, b in zip(window, window[1:])]
        turns = sum(1 for a, b in zip(diffs, diffs[1:]) if a * b < 0)
        mean_y = statistics.mean(window)
        # each epoch's distance from the straight line through its neighbours: a trend (even a sharp drop,
        # which moves one or two of them) leaves the median of these at ~0; swings do not
        swing = statistics.median(abs(b - (a + c) / 2) for a, b, c in zip(window, window[1:], window[2:]))
        vals = self._series("val_loss")[-n:]
        gap = abs(statistics.mean(vals) - mean_y) if len(vals) == n else 0.0
        losses = self._series("train_loss")
        descent = losses[0] - min(losses)  # how far the run's own trend has taken it
        size = swing / max(mean_y, 1e-12)
        if turns >= t.oscillation_turns and size > t.oscillation_size and swing > max(gap, 0.1 * descent):
            self._found("oscillating_loss", "warning", {"train_loss": window, "turns": turns,
                                                        "swing_around_trend": size, "train_val_gap": gap},
                        cause="learning_rate_too_high")

    def _series(self, key: str) -> list[float]:
        return [e[key] for e in self._epochs if key in e and math.isfinite(e[key])]

    def _check_step_time(self) -> None:
        """A note when the updates have become several times slower than at the start, for some epochs running.

        The start's pace is the median over the first epochs with a time (the
        first is often slower: start-up), kept in the first epoch's record (the
        one record the bounded history always holds, and a checkpoint keeps).
        The machine, not the model: a note, said once, never a finding.
        """
        t = self.t
        timed = [e for e in self._epochs if "step_seconds" in e]
        first = self._epochs[0]
        if "step_time_base" not in first:
            if len(timed) < t.step_time_base_epochs:
                return
            first["step_time_base"] = statistics.median(e["step_seconds"] for e in timed[:t.step_time_base_epochs])
            first["step_time_base_end"] = float(self.epoch + 1)  # the epoch the start's pace ends with
        base, held = first["step_time_base"], timed[-t.step_time_epochs:]
        if base <= 0 or len(held) < t.step_time_epochs or any(n.startswith("steps are ") for n in self.notes):
            return
        end = int(first["step_time_base_end"])
        if self.epoch + 1 - end < t.step_time_epochs:  # the held epochs come after the start's
            return
        if all(e["step_seconds"] >= t.step_time_growth * base and e["seconds"] >= t.step_time_min_seconds
               for e in held):
            slowest = min(e["step_seconds"] for e in held)
            at = f"{self.epoch + 2 - t.step_time_epochs}-{self.epoch + 1}"
            self._note(f"steps are {slowest / base:.2g}× slower than at the start: another process is competing "
                       f"for the CPU, or the data loader is the bottleneck ({base * 1e3:.3g} ms an update in the "
                       f"first {t.step_time_base_epochs} epochs, {slowest * 1e3:.3g} ms in epochs {at})")

    def _check_epochs(self) -> None:
        t = self.t
        losses = self._series("train_loss")
        if len(losses) > t.divergence_epochs:
            tail = losses[-t.divergence_epochs - 1:]
            if all(b > a for a, b in zip(tail, tail[1:])) and losses[-1] > t.divergence_factor * self._min_train_loss \
                    and not self._spike(losses[-1]):
                self._blew_up("divergence", {"train_loss": losses[-t.divergence_epochs - 1:],
                                             "min_train_loss": self._min_train_loss})
        accs = self._series("train_acc")
        if len(losses) >= t.oscillation_window:
            self._check_oscillation(losses[-t.oscillation_window:])
        if len(losses) > t.plateau_epochs:
            before = losses[-t.plateau_epochs - 1]
            gain = (before - min(losses[-t.plateau_epochs:])) / max(abs(before), 1e-12)
            flat = max(losses[-t.plateau_epochs:]) <= before * (1 + t.plateau_band)  # a rise is not a plateau
            # a plateau after the loss has halved is convergence (noisy data stop somewhere), not a problem
            if gain < t.plateau_improvement and flat and not self._fitted(losses, accs, halved=True) \
                    and not self._at_floor():
                cause = next((s for s in ("vanishing_gradients", "saturation", "dead_relu", "learning_rate_too_low",
                                          "learning_rate_too_high", "small_output_gradient", "double_softmax",
                                          "dropout_too_high", "missing_nonlinearity", "small_batch_norm")
                              if self.has(s)), None)
                recent = [statistics.median(r) for r in self._update_ratios[-5:] if r]  # recent step sizes
                if cause is None and recent and not self._collapsed():
                    if max(recent) < 100 * t.update_low:  # steps ~1e-4 of the weights or less, and nothing moves
                        cause = "learning_rate_too_low"
                        self._lr_too_low(max(recent), {"update_to_weight_median": recent, "train_loss": losses[-1]})
                evidence = {"train_loss": losses[-t.plateau_epochs - 1:], "improvement": gain}
                if accs:
                    evidence["train_acc"] = accs[-1]
                finding = self._found("slow_convergence", "warning", evidence, cause=cause)
                if finding is not None and recent and max(recent) >= t.step_target:
                    # steps are already as large as a remedy would make them: a higher rate is no cure
                    finding.remedies = [r for r in finding.remedies if not isinstance(r, ScaleLR)]
                    finding.remedy += f" (not the learning rate: steps are already {max(recent):.2g} of the weights)"
                elif finding is not None and self._collapsed():  # this rate overshot before: no higher one
                    finding.remedies = [r for r in finding.remedies if not isinstance(r, ScaleLR)]
                    finding.remedy += (" (not a higher learning rate: this rate made steps above "
                                       f"{t.update_high:g} of the weights earlier in the run, and the net stalled "
                                       "after them)")
                if accs and accs[-1] < t.underfit_accuracy:
                    self._found("underfitting", "warning", evidence, cause=cause)
        vals = self._series("val_loss")
        if self._best_val is not None and len(vals) > t.overfit_patience and len(losses) == len(vals):
            best_val, best_epoch, train_at_best = self._best_val
            waited = self.epoch + 1 - best_epoch
            # worse and worse: each epoch of the window 5% above the best, the latest the worst since the best
            # (a validation loss that jumps about its level - noisy, not rising - comes back down within it)
            rising = all(v > best_val * (1 + t.overfit_rise) for v in vals[-min(waited, t.overfit_patience):]) \
                and vals[-1] >= max(vals[-waited:])
            # good on the training data (its loss fell below the untrained model's, its accuracy is not
            # underfitting's), bad on validation: seed 002's tree asks about the training data first
            learnt = (self._first_loss is None or losses[-1] < self._first_loss) \
                and not (accs and accs[-1] < t.underfit_accuracy)
            # and the training loss kept improving meanwhile (seed 003's picture): over the epochs validation
            # rose, never back above its value at the best validation epoch - a training spike that drags
            # validation up is instability. Those epochs only: one noisy epoch just after the best is no spike
            # of the rise, and would otherwise hide every later overfitting of the run
            improving = losses[-1] < train_at_best and \
                max(losses[-min(waited, t.overfit_patience):]) <= train_at_best
            if waited >= t.overfit_patience and rising and improving and learnt:
                evidence = {"best_epoch": best_epoch, "best_val_loss": best_val, "val_loss": vals[-1],
                            "train_loss": losses[-1]}
                vaccs = self._series("val_acc")
                if accs and vaccs:
                    evidence["accuracy_gap"] = accs[-1] - vaccs[-1]
                self._found("overfitting", "warning", evidence)
