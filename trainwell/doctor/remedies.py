"""Remedies as data: what a finding says to change, in PyTorch's terms, not in any config's.

A finding carries a list of these. A hand-written loop applies them itself
(``ScaleLR(0.1)``: multiply every group's ``lr`` by 0.1); trainwell's run
layer turns them into config changes (:mod:`trainwell.runs.remedies`) and
trains again. The sizing rules (how much to lower or raise a rate) are
here too, so the doctor's rules only say what they measured.

Example:
    >>> from trainwell.doctor import ScaleLR
    >>> ScaleLR(0.03).to_dict()
    {'remedy': 'ScaleLR', 'factor': 0.03}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["REMEDIES", "AddClipping", "AddDropout", "AddNorm", "AddResidual", "AddWeightDecay", "Remedy", "ScaleLR",
           "SetActivation", "SetInit", "SetLoss", "SetSchedule", "StandardizeInputs", "StopEarly", "lower_rate",
           "raise_rate"]


@dataclass(frozen=True)
class Remedy:
    """One change that treats a finding. Subclasses hold its numbers and names."""

    def to_dict(self) -> dict[str, Any]:
        return {"remedy": type(self).__name__, **asdict(self)}

    @staticmethod
    def from_dict(d: dict[str, Any] | Remedy) -> Remedy:
        """The remedy a :meth:`to_dict` wrote (JSON in ``diagnosis.json``)."""
        if isinstance(d, Remedy):
            return d
        kind = REMEDIES.get(d.get("remedy", ""))
        if kind is None:
            raise ValueError(f"unknown remedy {d.get('remedy')!r}; known: {sorted(REMEDIES)}")
        return kind(**{f.name: d[f.name] for f in fields(kind) if f.name in d})


@dataclass(frozen=True)
class ScaleLR(Remedy):
    """Multiply every parameter group's learning rate by ``factor``."""

    factor: float


@dataclass(frozen=True)
class AddClipping(Remedy):
    """Clip the gradients' global L2 norm to ``max_norm`` before each update."""

    max_norm: float = 1.0


@dataclass(frozen=True)
class SetActivation(Remedy):
    """Use this activation in the hidden layers."""

    name: str


@dataclass(frozen=True)
class SetInit(Remedy):
    """Start the weights with this scheme (a name of :data:`trainwell.init.INITS`)."""

    name: str


@dataclass(frozen=True)
class AddNorm(Remedy):
    """Normalise every hidden layer (``batch``, ``layer``, ...)."""

    kind: str = "batch"


@dataclass(frozen=True)
class SetSchedule(Remedy):
    """Decay the learning rate with this schedule (``cosine``, ``step``, ...)."""

    name: str


@dataclass(frozen=True)
class StopEarly(Remedy):
    """Stop when the validation loss stops improving, restoring the best weights."""


@dataclass(frozen=True)
class AddDropout(Remedy):
    """Drop hidden units with probability ``p`` in training."""

    p: float = 0.3


@dataclass(frozen=True)
class AddWeightDecay(Remedy):
    """Shrink the weights by ``value`` times the rate each step (L2)."""

    value: float = 5e-4


@dataclass(frozen=True)
class SetLoss(Remedy):
    """Use this loss (``cross_entropy`` from logits: numerically stable; ``weighted_cross_entropy``)."""

    name: str


@dataclass(frozen=True)
class StandardizeInputs(Remedy):
    """Standardise every feature to mean 0 and variance 1 with the training split's statistics."""


@dataclass(frozen=True)
class AddResidual(Remedy):
    """Add identity shortcuts around the hidden blocks."""


REMEDIES: dict[str, type[Remedy]] = {k.__name__: k for k in (
    ScaleLR, AddClipping, SetActivation, SetInit, AddNorm, SetSchedule, StopEarly, AddDropout, AddWeightDecay,
    SetLoss, StandardizeInputs, AddResidual)}


def _rounded(factor: float) -> float:
    return float(f"{factor:.3g}")


def lower_rate(first_step: float, largest_step: float, target: float) -> tuple[ScaleLR, str]:
    """The rate that would have made the first measured step ``target`` of the weights, at least 10x lower.

    The factor is a bound, said as one: the rate it gives is the highest the
    first step allows, not one known to train (ReLUs may still die at it).

    A step's size is the rate times a function of the gradient; at the first
    step the gradient is the initial weights' and does not depend on the
    rate, so the size is proportional to it.

    Returns:
        The remedy and its words.
    """
    factor = min(0.1, target / first_step)
    bound = "; a rate that trains well may be lower still: a range test finds it (trainwell.optim.lr_range_test, " \
            "which doctor.repair runs)"
    if target / first_step < 0.1:  # the aim sets the factor
        why = (f"the first step changed the weights by {first_step:.2g} of their size, the largest step by "
               f"{largest_step:.2g}; at the new rate the first step would change them by {target:.2g}")
    else:  # the first step was small: the steps grew later, and 10x is the least the doctor asks
        why = (f"the first step changed the weights by only {first_step:.2g} of their size, but the largest step by "
               f"{largest_step:.2g}: the steps grew as the run went on")
    return ScaleLR(_rounded(factor)), f"lower the learning rate at least {1 / factor:.3g}x ({why}{bound})"


def raise_rate(step: float, target: float) -> tuple[ScaleLR, str]:
    """The rate that brings steps of ``step`` of the weights back to ``target`` (at most 1e6x higher)."""
    factor = min(1e6, target / step)
    return ScaleLR(_rounded(factor)), (f"raise the learning rate about {factor:.3g}x (steps are {step:.2g} of the weights; "
                             f"the new rate aims at {target:.2g})")
