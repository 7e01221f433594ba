"""The doctor's verdict on a whole run: how far training got, against what the data allow.

:class:`VerdictRules` is the part of :class:`~trainwell.doctor.Doctor` that
keeps a small sample of training rows (``sample_rows``, taken from the
batches it observes, or handed to it by the trainer's callback), runs the
lint (:mod:`trainwell.doctor.lint`) once it can see the loss, and at the end
of the run (``finish``, or the last ``end_epoch`` when ``total_steps`` is
known) compares the model's accuracy on half of that sample with two cheap
references on the same rows: predicting the most frequent class, and a
linear softmax model fitted on the other half (a few L-BFGS steps). A run whose accuracy got less
than ``verdict_share`` of the way from the first to the second is
underfitting, however steadily it was still improving: a plateau rule never
fires on a run that crawls until its budget ends.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainwell.doctor.findings import Finding
from trainwell.doctor.lint import lint
from trainwell.doctor.remedies import ScaleLR

__all__ = ["VerdictRules", "linear_reference"]

# what the lint found that shrinks or blocks learning: named as the verdict's cause
_BLOCKERS = ("double_softmax", "small_output_gradient", "dropout_too_high", "missing_nonlinearity",
             "small_batch_norm", "weight_decay_on_norms", "vanishing_gradients", "saturation", "dead_relu",
             "learning_rate_too_low")


@torch.no_grad()
def _standardized(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(len(x), -1).double()
    return (flat - flat.mean(0)) / flat.std(0).clamp_min(1e-8)


def linear_reference(x: torch.Tensor, y: torch.Tensor, n_classes: int, steps: int = 60,
                     fit: torch.Tensor | None = None) -> float:
    """Accuracy of a linear softmax model (L2 1e-3, L-BFGS) fitted on the rows ``fit`` and scored on the others.

    What a model with no hidden layer gets on rows it did not see: a lower
    bound of what the data allow (scored on its own rows, 400 weights fit 512
    rows of MNIST-1D to 0.53 while unseen ones get ~0.3). A deep model that
    trained should do at least as well on its own training data. Without
    ``fit``, in-sample.
    """
    z = _standardized(x)
    zb = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], 1)
    score = torch.ones(len(y), dtype=torch.bool)
    if fit is not None:
        score[fit] = False
        zb_fit, y_fit = zb[fit], y[fit]
    else:
        zb_fit, y_fit = zb, y
    w = torch.zeros(z.shape[1] + 1, n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(zb_fit @ w, y_fit) + 1e-3 * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(((zb[score] @ w).argmax(1) == y[score]).double().mean())


class VerdictRules:
    """Sample keeping, the lint and the end-of-run verdict, mixed into :class:`~trainwell.doctor.Doctor`."""

    sample_rows = 512

    def _init_verdict(self, loss_fn: Any, n_classes: int | None) -> None:
        self.loss_fn, self.n_classes = loss_fn, n_classes
        self._sample: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._sampled = 0
        self._linted = False
        self._sum_suspect: Finding | None = None  # a summed loss not yet judged by its first step
        self._judged = False
        self._reference: dict[str, Any] | None = None
        self.forward: Any = None  # f(model, x, y) -> output, set by a loop that has one (the trainer's callback)

    def keep_sample(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Rows of the training data the verdict judges the model on (classification: 1-D integer labels)."""
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or y.dim() != 1 \
                or y.is_floating_point() or self._sampled >= self.sample_rows:
            return
        take = min(len(y), self.sample_rows - self._sampled)
        self._sample.append((x[:take].detach().clone(), y[:take].detach().clone()))
        self._sampled += take

    def run_lint(self, loss_fn: Any, batch: tuple[torch.Tensor, torch.Tensor], **kw: Any) -> list[Finding]:
        """Run :func:`~trainwell.doctor.lint.lint` once and record its findings (the probes do not see it)."""
        if self._linted:
            return []
        self._linted = True
        active = self.acts.active, self.time.active
        self.acts.active = self.time.active = False
        try:
            found = lint(self.model, loss_fn, batch, optimizer=self.optimizer, thresholds=self.t,
                         n_classes=kw.pop("n_classes", self.n_classes), forward=kw.pop("forward", self.forward), **kw)
        except Exception as err:  # the doctor must never stop the user's training
            self._note(f"the lint failed: {type(err).__name__}: {err}")
            found = []
        finally:
            self.acts.active, self.time.active = active
        for f in found:
            if f.symptom not in self._reported:
                self._reported.add(f.symptom)
                f.step, f.epoch = self.step, self.epoch
                if f.symptom == "loss_sum_reduction" and f.severity == "warning" and self.updates is not None \
                        and self.updates.available:
                    self._sum_suspect = f  # judged by the first step it makes (_judge_sum)
                    continue
                self.findings.append(f)
                self._unsaid.append(f)
        return found

    def _judge_sum(self, closing: bool = False) -> None:
        """A summed loss harms through the size of its steps: judged on the first measured one.

        Summing makes every step batch-size times the mean's at the same rate;
        a rate chosen for the mean then overshoots. A first step within the
        overshoot threshold (``update_high``) shows a rate chosen for the sum
        (the mean's rate divided by the batch size): info. Unjudged at the end
        (no step was measured): the warning stands.
        """
        f, self._sum_suspect = self._sum_suspect, None
        if f is None:
            return
        first = self._first_step_size() if not closing else 0.0
        if first > 0:
            f.evidence["first_step"] = first
        if 0 < first <= self.t.update_high:
            f.severity, f.remedies = "info", []
            f.remedy = (f"none needed now: the first step moved the weights by {first:.2g} of their size, within a "
                        f"healthy step, so the rate was chosen for the sum; every step scales with the batch size, "
                        f"so a new batch size needs a new rate (reduction='mean' does not)")
        self.findings.append(f)
        self._unsaid.append(f)

    def _observe_start(self, inputs: torch.Tensor | None, targets: torch.Tensor | None) -> None:
        """At the first observed step: the lint (with the loss given), and sample rows on sampled steps."""
        if inputs is None or targets is None:
            return
        if not self._linted and self.loss_fn is not None:
            self.run_lint(self.loss_fn, (inputs, targets))
        if self.step % self.every == 0:
            self.keep_sample(inputs, targets)

    def finish(self) -> None:
        """Judge the whole run (once): call after the last epoch (the trainer's callback does, at fit end)."""
        if self._broken or self._judged:
            return
        self._judged = True
        try:
            self._judge_start()  # a run shorter than init_steps
            self._verdict()
        except Exception as err:  # the doctor must never stop the user's training
            self._note(f"the end-of-run verdict failed: {type(err).__name__}: {err}")
        finally:
            self._say_new()

    def progress(self) -> dict[str, Any] | None:
        """How far the model got on the kept training rows: from the majority class (0) to a linear model (1).

        The linear model is fitted on half of the rows and scored, as the model
        is, on the other half; None without a reference (too few rows, no
        classification, or a linear model no better than the majority class by
        ``verdict_room``). Computed once and kept.
        """
        if self._reference is not None:
            return self._reference or None
        self._reference = {}
        if not self._sample:
            return None
        x = torch.cat([a for a, _ in self._sample])
        y = torch.cat([b for _, b in self._sample])
        if len(y) < 32 or not x.is_floating_point():
            return None
        n_classes = max(int(y.max()) + 1, self.n_classes or 0)
        fit = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:len(y) // 2]
        scored = torch.ones(len(y), dtype=torch.bool)
        scored[fit] = False
        model_acc = self._accuracy(x[scored.to(x.device)], y[scored.to(y.device)])
        if model_acc is None:
            return None
        ys = y.cpu()[scored]
        majority = float(torch.bincount(ys, minlength=n_classes).max()) / len(ys)
        linear = linear_reference(x.cpu(), y.cpu(), n_classes, fit=fit)
        room = linear - majority
        if room < self.t.verdict_room:
            return None  # a linear model does no better than the prior: no reference to judge by
        self._reference = {"train_sample_accuracy": model_acc, "majority_class_accuracy": majority,
                           "linear_model_accuracy": linear, "progress_to_linear": (model_acc - majority) / room,
                           "sample_rows": len(ys)}
        return self._reference

    def _verdict(self) -> None:
        if any(self.has(s) for s in ("nan_loss", "divergence", "underfitting")):
            return
        self._reference = None  # judged on the final model
        ref = self.progress()
        if ref is None or ref["progress_to_linear"] >= self.t.verdict_share:
            return
        progress = ref["progress_to_linear"]
        evidence: dict[str, Any] = dict(ref)
        losses = self._series("train_loss")
        if len(losses) >= 3 and losses[-3] > 0:
            evidence["last_two_epochs_gain"] = (losses[-3] - losses[-1]) / losses[-3]
        cause = next((s for s in _BLOCKERS if self.has(s)), None)
        if cause is None and evidence.get("last_two_epochs_gain", 0.0) > self.t.plateau_improvement:
            cause = "budget"
        finding = self._found("underfitting", "warning", evidence, cause=cause)
        if finding is not None and cause == "budget":
            recent = [sorted(r)[len(r) // 2] for r in self._update_ratios[-5:] if r]
            if recent and max(recent) < self.t.step_target:
                finding.remedies = [ScaleLR(3.0)]
                finding.remedy = f"train longer or raise the learning rate: it was still improving when the run " \
                                 f"ended, at {progress:.0%} of the way from the majority class to a linear model"

    @torch.no_grad()
    def _accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float | None:
        model: nn.Module = self.model
        was_training = model.training
        active = self.acts.active, self.time.active
        self.acts.active = self.time.active = False
        try:
            model.eval()
            out = self.forward(model, x, y) if self.forward is not None else model(x)
        finally:
            model.train(was_training)
            self.acts.active, self.time.active = active
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or not bool(torch.isfinite(out).all()):
            return None
        return float((out.argmax(1) == y.to(out.device)).float().mean())

    def _verdict_due(self) -> bool:
        """At the end of an epoch: the run's last, when its length is known."""
        return self.total_steps is not None and self.step >= self.total_steps
