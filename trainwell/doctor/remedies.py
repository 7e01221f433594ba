"""From findings to config changes: the repair plan (``doctor.repair: true``)."""

from __future__ import annotations

from typing import Any

from trainwell.doctor.findings import SYMPTOMS, Finding

__all__ = ["plan_repair", "repairable", "resolve_overrides"]

_ORDER = {"error": 0, "warning": 1, "info": 2}
_WITH_OPTIONS = ("model.init", "model.activation", "model.norm")
_ROOTS = ("unscaled_inputs", "bad_initialisation")
# Symptoms whose remedy is left to the user (no safe config change).
_MANUAL = {"bad_input", "data_leakage", "underfitting", "degradation"}


def _get(cfg: Any, key: str) -> Any:
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def resolve_overrides(overrides: list[str], cfg: Any) -> list[str]:
    """Turn ``key*=f`` into ``key=value`` using the current config; drop changes that change nothing."""
    out = []
    for item in overrides:
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


def _fits(cfg: Any, overrides: list[str]) -> list[str]:
    """Leave out changes the model family refuses (a norm for recurrent nets, an activation for seq2seq)."""
    family = cfg.model.name
    keep = []
    for item in overrides:
        key = item.split("=")[0].rstrip("*")
        if key == "model.norm" and family not in ("mlp", "cnn"):
            continue
        if key in ("model.activation", "model.init") and family in ("seq2seq", "logistic"):
            continue
        keep.append(item)
    return keep


def _changes(finding: Finding, cfg: Any) -> list[str]:
    """The config changes the finding's remedy makes to ``cfg``: its overrides, or, once those are in place
    and the problem is still there, the remedy's next step (``Symptom.then``)."""
    return resolve_overrides(_fits(cfg, [o for o in finding.overrides if "=" in o]), cfg) \
        or resolve_overrides(_fits(cfg, list(SYMPTOMS[finding.symptom].then)), cfg)


def repairable(finding: Finding, cfg: Any) -> bool:
    """Whether the finding has a remedy trainwell can apply to ``cfg``."""
    return finding.severity != "info" and finding.symptom not in _MANUAL and \
        "repaired_in_place" not in finding.evidence and bool(_changes(finding, cfg))


def plan_repair(findings: list[Finding], cfg: Any, tried: list[list[str]] = ()) -> tuple[Finding, list[str]] | None:
    """The finding to repair first (root causes, then the most severe) and the config changes that repair it.

    Returns None when nothing found has a valid config remedy not already tried.
    """
    from trainwell.config import apply_overrides
    from trainwell.errors import TrainwellError

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
