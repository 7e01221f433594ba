"""Regularisation (seeds 000-002, section D): L1, L2 and weight decay as parameter groups.

Penalties apply to weights, not to biases or normalisation parameters (seed
002: a bias only shifts a unit; shrinking it does not make the model
simpler). Those are told apart by shape: every 1-D parameter (biases, batch
and layer norm's gamma and beta) is excluded, every weight matrix or kernel is
penalised. The coefficients live in each group under ``l1``, ``l2`` and
``decoupled_weight_decay``; the optimizer chain reads them (see
:func:`trainwell.optim.build_optimizer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from trainwell.errors import TrainwellError

__all__ = ["param_groups"]


def _multiplier(name: str, multipliers: Mapping[str, float]) -> tuple[str, float]:
    """The longest prefix of ``name`` (at a dot boundary) with a multiplier, or ("", 1)."""
    best = ("", 1.0)
    for prefix, value in multipliers.items():
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best[0]):
            best = (prefix, value)
    return best


def param_groups(model: nn.Module, *, l1: float = 0.0, l2: float = 0.0, decoupled_weight_decay: float = 0.0,
                 exclude_bias_and_norm: bool = True,
                 lr_multipliers: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Split ``model``'s parameters into optimizer groups.

    Args:
        model: the network.
        l1, l2, decoupled_weight_decay: penalty coefficients for penalised parameters.
        exclude_bias_and_norm: leave 1-D parameters (biases, norm gamma/beta) unpenalised.
        lr_multipliers: module-name prefix -> learning-rate multiplier, e.g.
            ``{"net.hidden0": 0.1}`` for a slower first layer; the longest matching prefix wins.

    Returns:
        Groups with ``params``, ``names``, ``lr_multiplier``, ``l1``, ``l2`` and
        ``decoupled_weight_decay``; multiply ``lr_multiplier`` into ``lr``.

    Raises:
        TrainwellError: a prefix in ``lr_multipliers`` matches no parameter.
    """
    multipliers = dict(lr_multipliers or {})
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for prefix in multipliers:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            modules = sorted({n.rsplit(".", 1)[0] for n in names})
            raise TrainwellError(f"lr multiplier prefix {prefix!r} matches no parameter; modules: {', '.join(modules)}")
    groups: dict[tuple[bool, str], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        penalised = not (exclude_bias_and_norm and p.dim() <= 1)
        prefix, mult = _multiplier(name, multipliers)
        group = groups.setdefault((penalised, prefix), {
            "params": [], "names": [], "lr_multiplier": mult,
            "l1": l1 if penalised else 0.0, "l2": l2 if penalised else 0.0,
            "decoupled_weight_decay": decoupled_weight_decay if penalised else 0.0})
        group["params"].append(p)
        group["names"].append(name)
    return list(groups.values())
