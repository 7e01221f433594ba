"""The doctor's judgement of the start: activations that shrink or grow from layer to layer at step 0.

:class:`StartRules` is the part of :class:`~trainwell.doctor.Doctor` that
reads the first sample's pre-activation spreads (measured on standardised
inputs, so the input's scale is not the weights' fault).

A spread that grows tenfold by the last layer is a warning at once: it
overflows within steps. One that shrinks tenfold is only a suspicion: a
shallow net trained with an adaptive optimizer learns through it (PyTorch's
default init shrinks a ReLU net's spread ~0.4x a layer, and a digits CNN
with it reaches 0.98). The suspicion becomes a warning when the run shows
what it costs (vanishing gradients, units dead from the start, or an epoch
``init_steps`` updates in whose loss fell by less than ``init_progress``),
and is said as info when the run learnt despite it.
"""

from __future__ import annotations

import math
from typing import Any

from trainwell.doctor.findings import Finding

__all__ = ["StartRules"]


class StartRules:
    """Rules on the start, mixed into :class:`~trainwell.doctor.Doctor` (which holds the state they read)."""

    _start_suspect: dict[str, Any] | None = None  # a shrinking start not yet judged: evidence, layer

    def _check_start(self, profile: dict[str, float]) -> None:
        """At step 0: the spread of each activation's pre-activation against the first layer's."""
        names = [n for n, *_ in self.acts.modules if n in profile]
        stds = [profile[n] for n in names]
        if len(stds) < 2 or not stds[0] > 0:
            return
        for n, s in zip(names[1:], stds[1:]):
            r = s / stds[0]
            evidence = {"pre_activation_std": dict(zip(names, stds)), "ratio_to_first": r}
            if r > self.t.init_explode:
                self._found("bad_initialisation", "warning", evidence, layer=n, cause="bad_initialisation")
                return
            if r < self.t.init_collapse:
                self._start_suspect = {"evidence": evidence, "layer": n}
                return

    def _start_to_blame(self) -> bool:
        """Whether a bad start is found, or suspected and now shown by a rule that names it as the cause
        (the suspicion then becomes a warning, dated at step 0 where it was measured)."""
        if self._start_suspect is not None:
            self._say_start("warning")  # a rule found what it costs
        return self.has("bad_initialisation")

    def _judge_start(self, loss: float | None = None) -> None:
        """At the end of the first epoch that ends ``init_steps`` updates in (or of the run, if sooner): warning
        if the epoch's loss fell by less than ``init_progress`` of the first steps' loss, else info (the run
        learns despite the start). Without ``loss``, the last epoch's training loss or the last step's."""
        if self._start_suspect is None:
            return
        if loss is None:
            ends = [e["train_loss"] for e in self._epochs if "train_loss" in e]
            loss = ends[-1] if ends else (self._recent_losses[-1] if self._recent_losses else None)
        first = self._first_loss
        if loss is None or first is None or not math.isfinite(loss) or not first > 0:
            self._say_start("warning")
            return
        fell = 1.0 - loss / first
        self._start_suspect["evidence"]["loss_fall"] = fell
        self._say_start("warning" if fell < self.t.init_progress else "info", fell)

    def _say_start(self, severity: str, fell: float | None = None) -> None:
        suspect, self._start_suspect = self._start_suspect, None
        if self.has("bad_initialisation"):
            return
        self._reported.add("bad_initialisation")
        finding = Finding("bad_initialisation", severity, 0, 1, suspect["evidence"], "bad_initialisation",
                          suspect["layer"])
        if severity == "info":
            finding.remedy = (f"none needed now: the spread shrinks {1 / suspect['evidence']['ratio_to_first']:.0f}x "
                              f"by {suspect['layer']}, yet the loss fell {100 * fell:.0f}% in the first {self.step} steps; in a "
                              "deeper net the shrinking compounds: He initialisation for ReLU, Xavier for tanh/sigmoid")
            finding.remedies = []
        self.findings.append(finding)
        self._unsaid.append(finding)
