"""What the doctor says: findings, in the words of the notes.

A :class:`Finding` names a symptom, its likely cause, where (layer, step,
epoch), the numbers that triggered it, and the remedy - in words, and as
structured changes (:mod:`trainwell.doctor.remedies`) that a loop or
trainwell's run layer (``doctor.repair: true``) can apply.

The vocabulary, with the remedies of the notes:
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from trainwell.doctor.remedies import (AddClipping, AddDropout, AddNorm, AddResidual, AddWeightDecay, Remedy,
                                       ScaleLR, SetActivation, SetInit, SetLoss, SetSchedule, StandardizeInputs,
                                       StopEarly)

__all__ = ["CAUSES", "NAN_REMEDIES", "SEVERITIES", "SYMPTOMS", "Finding", "Symptom"]

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")


@dataclass(frozen=True)
class Symptom:
    """One entry of the vocabulary: what it means, why it happens, what to do."""

    id: str
    means: str
    remedy: str
    remedies: tuple[Remedy, ...] = ()  # the changes that apply the remedy
    then: tuple[Remedy, ...] = ()  # the remedy's next step, once its changes are in place and it is still found


SYMPTOMS: dict[str, Symptom] = {s.id: s for s in [
    Symptom("vanishing_gradients",
            "the gradient shrinks layer by layer towards the input, so the first layers barely learn "
            "(a product of many derivatives below 1: sigmoid's is at most 0.25)",
            "use ReLU (derivative 1), He/Xavier initialisation for the activation, batch norm, or residual "
            "connections",
            (SetActivation("relu"), SetInit("he_normal"), AddNorm("batch"))),
    Symptom("exploding_gradients",
            "the gradient grows layer by layer or step by step until updates throw the weights far away",
            "clip the gradient's global norm and lower the learning rate",
            (AddClipping(1.0), ScaleLR(0.1))),
    Symptom("saturation",
            "sigmoid/tanh units sit near their limits, where the derivative is ~0 and they stop learning",
            "use ReLU, He/Xavier initialisation (smaller pre-activations), batch norm before the activation",
            (SetActivation("relu"), SetInit("he_normal")), (AddNorm("batch"),)),
    Symptom("dead_relu",
            "ReLU units output 0 for every input, so their gradient is 0 and they never recover",
            "use leaky ReLU, a lower learning rate, He initialisation",
            (SetActivation("leaky_relu"), ScaleLR(0.1), SetInit("he_normal"))),
    Symptom("nan_loss",
            "the loss is NaN or infinite: training cannot go on",
            "depends on the cause (see it); a numerically stable loss (cross-entropy from logits), clipping "
            "and a lower learning rate, or clean inputs",
            ()),
    Symptom("divergence", "the training loss keeps growing", "lower the learning rate or add a schedule",
            (ScaleLR(0.1),)),
    Symptom("oscillating_loss", "the loss jumps up and down instead of settling: steps overshoot the minimum",
            "lower the learning rate or decay it (a schedule)", (ScaleLR(0.3), SetSchedule("cosine"))),
    Symptom("slow_convergence", "the loss has reached a plateau: it barely moves from epoch to epoch",
            "raise the learning rate, use Adam, add batch norm", (ScaleLR(3.0),)),
    Symptom("underfitting", "the model is bad on the training data itself",
            "fix the optimisation first (vanishing gradients, learning rate, local minima), then a bigger model",
            ()),
    Symptom("overfitting", "good on the training data, worse and worse on the validation data",
            "early stopping restoring the best weights, dropout, weight decay, more data or augmentation",
            (StopEarly(), AddDropout(0.3), AddWeightDecay(0.0005))),
    Symptom("learning_rate_too_high", "each update moves the weights by a large share of their size",
            "lower the learning rate or add a schedule", (ScaleLR(0.1),)),
    Symptom("learning_rate_too_low", "updates are tiny compared with the weights: learning crawls",
            "raise the learning rate", (ScaleLR(10.0),)),
    Symptom("bad_initialisation",
            "at step 0 the signal's variance collapses or explodes with depth (the rule of seed 004: it should "
            "stay the same from layer to layer)",
            "use He initialisation for ReLU, Xavier for tanh/sigmoid, or batch norm",
            (SetInit("he_normal"),)),
    Symptom("data_leakage", "the same rows are in more than one of train, validation and test (数据穿越)",
            "remove the shared rows: validation and test scores are too optimistic", ()),
    Symptom("class_imbalance", "some classes have far fewer rows than others, and their recall suffers",
            "class weights in the loss or resampling", (SetLoss("weighted_cross_entropy"),)),
    Symptom("unscaled_inputs", "features have very different scales, which slows and destabilises training",
            "standardise the inputs (data.standardize=true)", (StandardizeInputs(),)),
    Symptom("bad_input", "the data hold non-finite values or labels outside the model's outputs",
            "drop or fix the listed rows", ()),
    Symptom("double_softmax", "the model's outputs are probabilities and the loss applies its own softmax: it "
            "sees logits confined to [0, 1], a floor under the loss and a squeezed gradient",
            "remove the softmax at the end of the model (the loss applies its own)", ()),
    Symptom("small_output_gradient", "the loss's gradient at the output vanishes for confident mistakes: a "
            "sigmoid or softmax squashed before MSE multiplies it by the squashing's derivative",
            "use cross-entropy from logits", (SetLoss("cross_entropy"),)),
    Symptom("loss_sum_reduction", "the loss sums over the batch instead of averaging: every step is batch-size "
            "times larger than the rate was chosen for", "use reduction='mean' or divide the rate by the batch size",
            ()),
    Symptom("output_width_mismatch", "the model has more outputs than the data have classes",
            "give the last layer one output per class", ()),
    Symptom("dropout_too_high", "dropout drops most units (p is the drop probability, not the keep probability)",
            "write p as the share to drop (0.1-0.5)", (AddDropout(0.2),)),
    Symptom("small_batch_norm", "batch norm on batches of a few rows: its statistics are noise",
            "larger batches, or layer/group norm", (AddNorm("layer"),)),
    Symptom("missing_nonlinearity", "linear layers follow each other with no nonlinearity between them: together "
            "they are one linear map", "put an activation between them", ()),
    Symptom("weight_decay_on_norms", "weight decay reaches biases and norm gains that were meant to be left alone",
            "put every 1-D parameter in the group without decay", ()),
    Symptom("constant_features", "some input features are (nearly) constant: they carry no information",
            "none needed (drop them if they cost memory)", ()),
    Symptom("degradation", "a deeper plain network trains worse than a shallower one (not overfitting: worse "
            "on the training data)", "add residual connections or batch norm", (AddResidual(),)),
    Symptom("unshuffled_batches", "the batches come in the data's order, each holding a few of the classes: every "
            "stretch of updates pulls the model towards other classes, and each epoch ends tuned to its last ones",
            "shuffle the rows every epoch (DataLoader(shuffle=True), or a new random permutation each epoch)", ()),
]}

# What to do about a NaN loss, by cause, and the changes that do it.
NAN_REMEDIES: dict[str, tuple[str, tuple[Remedy, ...]]] = {
    "bad_input": ("drop or fix the listed rows", ()),
    "log_of_zero": ("use a numerically stable loss (cross-entropy from logits, log-softmax) and guard log/sqrt/division "
                    "in the model", (SetLoss("cross_entropy"),)),
    "exploding_gradients": ("clip the gradient's global norm and lower the learning rate",
                            (AddClipping(1.0), ScaleLR(0.1))),
    "learning_rate_too_high": ("lower the learning rate", (ScaleLR(0.1),)),
}

# Causes a finding can name (besides another symptom's id).
CAUSES: dict[str, str] = {
    "learning_rate_too_high": "the learning rate is too high",
    "learning_rate_too_low": "the learning rate is too low",
    "exploding_gradients": "the gradients exploded",
    "vanishing_gradients": "the gradients vanished",
    "log_of_zero": "a non-finite operation (log of 0, division by 0, overflow) on finite values",
    "bad_input": "non-finite values in the batch",
    "saturating_activation": "the activation saturates (sigmoid/tanh)",
    "bad_initialisation": "the initial weights are too small or too large",
    "depth": "many layers multiply the effect",
    "recurrence": "the recurrent weight matrix multiplies the gradient once per time step",
    "small_batch": "batches too small for batch norm's statistics",
    "architecture": "the model's structure",
    "keep_probability_as_p": "a keep probability was written as dropout's p",
    "decay_filter": "the filter that excludes parameters from weight decay misses some",
    "softmax_before_loss": "a softmax before a loss that applies its own",
    "squashed_loss": "a squashing activation before the loss multiplies its gradient by its derivative",
    "sum_reduction": "the loss sums over the batch",
    "near_duplicates": "rows of one split are near-copies of rows of another (resampling or noisy copies before "
                       "the split)",
    "overlapping_windows": "validation or test rows are training rows shifted by a few steps: overlapping windows "
                           "of one series, split at random",
    "budget": "the run ended before training got far: too few updates for this rate",
    "input_scale": "the inputs' scale or offset",
}


@dataclass
class Finding:
    """One thing the doctor found.

    Attributes:
        symptom: an id of :data:`SYMPTOMS`.
        cause: an id of :data:`CAUSES` (or a symptom), or None.
        layer: the module name where it shows, or None.
        step, epoch: where it was first seen: the update count before it (from 0), and the epoch
            as ``history.jsonl`` numbers it (from 1; 0 = before training, the audit).
        evidence: the numbers that triggered it.
        remedy: what to do, in words.
        severity: ``info``, ``warning`` or ``error``.
        remedies: the changes that apply the remedy (:mod:`trainwell.doctor.remedies`); None (the
            default) takes the symptom's own, ``[]`` means none.
        repaired: what was already done about it during the run (early stopping restored the best
            weights), or None; a repaired finding needs no further repair.
    """

    symptom: str
    severity: Severity
    step: int
    epoch: int
    evidence: dict[str, Any] = field(default_factory=dict)
    cause: str | None = None
    layer: str | None = None
    remedy: str = ""
    remedies: list[Remedy] | None = None
    repaired: str | None = None

    def __post_init__(self) -> None:
        if self.symptom not in SYMPTOMS:
            raise ValueError(f"unknown symptom {self.symptom!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        remedy, remedies = SYMPTOMS[self.symptom].remedy, SYMPTOMS[self.symptom].remedies
        if self.symptom == "nan_loss" and self.cause in NAN_REMEDIES:
            remedy, remedies = NAN_REMEDIES[self.cause]
        if not self.remedy:
            self.remedy = remedy
        if self.remedies is None:  # not `not`: a remedy emptied on purpose stays empty when read back
            self.remedies = list(remedies)
        else:  # as written to diagnosis.json
            self.remedies = [Remedy.from_dict(r) for r in self.remedies]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["remedies"] = [r.to_dict() for r in self.remedies]
        return d

    def __str__(self) -> str:
        where = f" in {self.layer}" if self.layer else ""
        why = f", because {CAUSES.get(self.cause, self.cause.replace('_', ' '))}" if self.cause else ""
        numbers = ", ".join(f"{k}={_short(v)}" for k, v in self.evidence.items())
        return (f"[{self.severity}] {self.symptom.replace('_', ' ')}{where} (epoch {self.epoch}, step {self.step})"
                f"{why}: {SYMPTOMS[self.symptom].means}. Evidence: {numbers}. Remedy: {self.remedy}.")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list) and len(value) > 8:
        return "[" + ", ".join(_short(v) for v in value[:8]) + ", ...]"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)
