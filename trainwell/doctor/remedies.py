"""From findings to config changes: the repair plan (``doctor.repair: true``)."""

from __future__ import annotations

from typing import Any

from trainwell.doctor.findings import Finding

__all__ = ["plan_repair", "resolve_overrides"]

_ORDER = {"error": 0, "warning": 1, "info": 2}
# Symptoms whose remedy is left to the user (no safe config change).
_MANUAL = {"bad_input", "data_leakage", "underfitting", "degradation", "unscaled_inputs"}


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


def plan_repair(findings: list[Finding], cfg: Any, tried: list[list[str]] = ()) -> tuple[Finding, list[str]] | None:
    """The finding to repair first (most severe, in order found) and the config changes that repair it.

    Returns None when nothing found has a config remedy not already tried.
    """
    for finding in sorted(findings, key=lambda f: _ORDER[f.severity]):
        if finding.severity == "info" or finding.symptom in _MANUAL:
            continue
        wanted = [o for o in finding.overrides if "=" in o]
        changes = resolve_overrides(_fits(cfg, wanted), cfg)
        if changes and changes not in tried:
            return finding, changes
    return None
