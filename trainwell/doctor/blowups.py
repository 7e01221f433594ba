"""The doctor's rules for numbers that blew up: a NaN loss and a divergence, with their cause.

:class:`BlowUpRules` is the part of :class:`~trainwell.doctor.Doctor` that
names why a loss became NaN or diverged (bad input rows, a log of zero,
exploding gradients, or a learning rate too high) and which module made
the first non-finite value.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch

from trainwell.doctor.probes import first_non_finite

__all__ = ["BlowUpRules"]


class BlowUpRules:
    """NaN and divergence rules, mixed into :class:`~trainwell.doctor.Doctor` (which holds the state they read)."""

    def _overshoot(self) -> float | None:
        """The first measured step's median size when it overshot (above ``update_high``), else None."""
        if not self._update_ratios:
            return None
        size = statistics.median([r for r in self._update_ratios[0] if math.isfinite(r)] or [0.0])
        return size if size > self.t.update_high else None

    def _growth_cause(self) -> str:
        """Why numbers grew until they overflowed or the loss diverged: exploding gradients or too large steps."""
        if self._grads:
            first = self._grads[0]
            if first["ratio"] > self.t.exploding_ratio or first["rms"] > self.t.exploding_rms \
                    or not math.isfinite(first["rms"]):
                return "exploding_gradients"  # large from the start, before any step: depth or init
        if self._overshoot() is not None:
            return "learning_rate_too_high"
        if self.has("exploding_gradients"):
            return "exploding_gradients"
        return "learning_rate_too_high"

    def _check_jump(self, value: float, inputs: torch.Tensor | None) -> None:
        """Divergence within an epoch: the mean loss of the last steps holding ``divergence_rows`` rows is
        ``divergence_jump`` times that of the first such steps (one step at batches of 32 rows or more)."""
        rows = len(inputs) if isinstance(inputs, torch.Tensor) and inputs.dim() > 0 and len(inputs) else None
        window = max(1, math.ceil(self.t.divergence_rows / rows)) if rows else 1
        if window == 1:  # batches of 32 rows or more: this step alone (every step: kept cheap)
            self._recent_losses = [value]
        else:
            self._recent_losses.append(value)
            del self._recent_losses[:-window]
        if len(self._start_losses) < window:
            self._start_losses.append(value)
            self._first_loss = sum(self._start_losses) / len(self._start_losses)
            return
        recent = value if window == 1 else sum(self._recent_losses) / window
        if self.step >= max(5, 2 * window - 1) and recent > self.t.divergence_jump * max(self._first_loss, 1e-12) \
                and not self.has("divergence"):
            evidence = {"loss": recent, "first_loss": self._first_loss}
            if window > 1:
                evidence["mean_of_steps"] = window
            self._blew_up("divergence", evidence)

    def _blew_up(self, symptom: str, evidence: dict[str, Any], layer: str | None = None) -> None:
        """Report a NaN loss or a divergence from numbers that grew, with its cause and a remedy sized for it.

        One overshooting step is not a finding on its own (RMSprop's first step,
        without bias correction, is 10x its rate, and that run is healthy); a
        first step that overshot and a loss that then blew up is a learning rate
        too high, and it is reported as that too.
        """
        cause = self._growth_cause()
        finding = self._found(symptom, "error", evidence, cause=cause, layer=layer)
        if cause != "learning_rate_too_high":
            return
        self._slow_down(finding)
        size = self._overshoot()
        if size is not None:
            self._slow_down(self._found("learning_rate_too_high", "warning",
                                        {"first_update_to_weight": size, "then": symptom}))

    def _diagnose_nan(self, value: float, inputs: torch.Tensor | None, targets: torch.Tensor | None) -> None:
        evidence: dict[str, Any] = {"loss": value}
        for what, batch in (("inputs", inputs), ("targets", targets)):  # float targets: regression, soft labels
            if batch is not None and batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
                bad = (~torch.isfinite(batch.reshape(len(batch), -1))).any(dim=1).nonzero().flatten().tolist()
                evidence.update(rows_in_batch=bad[:20], n_rows=len(bad), where=what)
                self._found("nan_loss", "error", evidence, cause="bad_input")
                return
        if inputs is None:
            self._note("observe() got no inputs: the NaN's origin cannot be traced")
            self._blew_up("nan_loss", evidence)
            return
        trace = first_non_finite(self.model, inputs)
        evidence.update(passed_on=trace["passed_on"][:10])
        if trace["origin"] is None:  # every module's output is finite: the loss made the NaN
            evidence["output_max_abs"] = trace["output_max_abs"]
            if trace["output_max_abs"] > 1e30:  # a stable loss overflows only on outputs near float32's limit
                self._blew_up("nan_loss", evidence, layer="loss")
            else:
                self._found("nan_loss", "error", evidence, cause="log_of_zero", layer="loss")
            return
        module = dict(self.model.named_modules())[trace["origin"]]
        has_params = any(True for _ in module.parameters(recurse=False))
        evidence["origin_params_finite"] = trace["params_finite"]
        if has_params or not trace["params_finite"]:
            self._blew_up("nan_loss", evidence, layer=trace["origin"])
        else:
            self._found("nan_loss", "error", evidence, cause="log_of_zero", layer=trace["origin"])
