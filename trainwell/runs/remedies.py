"""From the doctor's remedies to config changes: the repair plan (``doctor.repair: true``).

The doctor speaks PyTorch (``ScaleLR(0.1)``, ``SetInit("he_normal")``); a
run is described by its config, so a repair is a list of ``key=value``
changes made to it.
"""

from __future__ import annotations

from typing import Any

from trainwell.config import Config, apply_overrides
from trainwell.doctor import (AddClipping, AddDropout, AddNorm, AddResidual, AddWeightDecay, Finding, Remedy,
                              ScaleLR, SetActivation, SetInit, SetLoss, SetSchedule, StandardizeInputs, StopEarly)
from trainwell.doctor.findings import SYMPTOMS
from trainwell.errors import TrainwellError

__all__ = ["config_change", "plan_repair", "repairable", "resolve_changes"]

_ORDER = {"error": 0, "warning": 1, "info": 2}
_WITH_OPTIONS = ("model.init", "model.activation", "model.norm")
_ROOTS = ("unscaled_inputs", "bad_initialisation")
# Symptoms whose remedy is left to the user (no safe config change).
_MANUAL = {"bad_input", "data_leakage", "underfitting", "degradation"}


def config_change(remedy: Remedy) -> str:
    """The config change of one remedy: ``key=value``, or ``key*=f`` to scale a number."""
    match remedy:
        case ScaleLR(factor):
            return f"optim.lr*={factor:.3g}"
        case AddClipping(max_norm):
            return f"clip.max_norm={max_norm}"
        case SetActivation(name):
            return f"model.activation={name}"
        case SetInit(name):
            return f"model.init={name}"
        case AddNorm(kind):
            return f"model.norm={kind}"
        case SetSchedule(name):
            return f"schedule.name={name}"
        case StopEarly():
            return "early_stopping.enabled=true"
        case AddDropout(p):
            return f"model.dropout={p}"
        case AddWeightDecay(value):
            return f"reg.weight_decay={value}"
        case SetLoss(name):
            return f"loss={name}"
        case StandardizeInputs():
            return "data.standardize=true"
        case AddResidual():
            return "model.residual=true"
    raise TypeError(f"no config change for remedy {remedy!r}")


def _get(cfg: Any, key: str) -> Any:
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def resolve_changes(changes: list[str], cfg: Config) -> list[str]:
    """Turn ``key*=f`` into ``key=value`` using the current config; drop changes that change nothing."""
    out = []
    for item in changes:
        if "*=" in item:
            key, factor = item.split("*=", 1)
            current = _get(cfg, key)
            if current is None:
                continue
            item = f"{key}={float(current) * float(factor):.6g}"
        key, value = item.split("=", 1)
        if str(_get(cfg, key)).lower() != value.lower():
            out.append(item)
            if key in _WITH_OPTIONS and _get(cfg, f"{key}_options"):  # options of the old choice do not carry over
                out.append(f"{key}_options={{}}")
    return out


def _fits(cfg: Config, remedies: list[Remedy]) -> list[str]:
    """The changes of the remedies the model family takes (no norm for recurrent nets, no activation for seq2seq)."""
    family = cfg.model.name
    keep = []
    for remedy in remedies:
        if isinstance(remedy, AddNorm) and family not in ("mlp", "cnn"):
            continue
        if isinstance(remedy, (SetActivation, SetInit)) and family in ("seq2seq", "logistic"):
            continue
        keep.append(config_change(remedy))
    return keep


def _changes(finding: Finding, cfg: Config) -> list[str]:
    """The config changes the finding's remedy makes to ``cfg``: its remedies, or, once those are in place
    and the problem is still there, the remedy's next step (``Symptom.then``)."""
    return resolve_changes(_fits(cfg, finding.remedies), cfg) \
        or resolve_changes(_fits(cfg, list(SYMPTOMS[finding.symptom].then)), cfg)


def repairable(finding: Finding, cfg: Config) -> bool:
    """Whether the finding has a remedy trainwell can apply to ``cfg``."""
    return finding.severity != "info" and finding.symptom not in _MANUAL and \
        finding.repaired is None and bool(_changes(finding, cfg))


def plan_repair(findings: list[Finding], cfg: Config, tried: list[list[str]] = ()) -> tuple[Finding, list[str]] | None:
    """The finding to repair first (root causes, then the most severe) and the config changes that repair it.

    Returns None when nothing found has a valid config remedy not already tried.
    """
    # Root causes first: data and initialisation problems exist before training and cause the rest
    # (unscaled inputs make gradients explode; a bad start makes them vanish or explode).
    # A finding caused by one of them (gradients exploding from the recurrent start) comes next, before its
    # consequences (the NaN it led to).
    for finding in sorted(findings, key=lambda f: (0 if f.symptom in _ROOTS else 1 if f.cause in _ROOTS else 2,
                                                   _ORDER[f.severity])):
        if not repairable(finding, cfg):
            continue
        changes = _changes(finding, cfg)
        if changes in tried:
            continue
        try:
            apply_overrides(cfg, changes)
        except TrainwellError:  # a remedy this config cannot take
            continue
        return finding, changes
    return None
