"""Optimizers by name, and the builder that turns a config into one.

Config keys use torch.optim's names. ``optim.lr``, ``optim.momentum``,
``optim.betas`` and ``optim.eps`` left out take the optimizer's own default;
any other keyword goes in ``optim.options``. ``reg.*`` adds penalties as
stages of the chain, ``optim.lr_multipliers`` gives layers their own rate.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from trainwell.errors import TrainwellError
from trainwell.optim import named
from trainwell.optim.chain import Chain
from trainwell.optim.newton import newton
from trainwell.optim.penalties import add_decayed_weights, add_l1, add_l2, l1_proximal
from trainwell.registry import Registry

__all__ = ["OPTIMIZERS", "build_optimizer", "optimizer_defaults"]

OPTIMIZERS: Registry = Registry("optimizer")


def _lbfgs(params, lr: float = 1.0, max_iter: int = 20, history_size: int = 100,
           line_search_fn: str | None = "strong_wolfe") -> torch.optim.LBFGS:
    return torch.optim.LBFGS(params, lr=lr, max_iter=max_iter, history_size=history_size,
                             line_search_fn=line_search_fn)


for _name, _fn in [("sgd", named.sgd), ("momentum", named.momentum), ("nesterov", named.nesterov),
                   ("adagrad", named.adagrad), ("adadelta", named.adadelta), ("rmsprop", named.rmsprop),
                   ("adam", named.adam), ("adamw", named.adamw)]:
    OPTIMIZERS.add(_name, _fn, (_fn.__doc__ or "").strip().splitlines()[0], chain=True)
OPTIMIZERS.add("newton", newton, "Newton's method with the exact Hessian and damping (small models only)", chain=False)
OPTIMIZERS.add("lbfgs", _lbfgs, "L-BFGS quasi-Newton (torch.optim.LBFGS with a strong-Wolfe line search)",
               chain=False)

FIRST_CLASS = ("lr", "momentum", "betas", "eps")


def optimizer_defaults(name: str) -> dict[str, Any]:
    """Keyword arguments of optimizer ``name`` and their defaults (torch.optim's names)."""
    sig = inspect.signature(OPTIMIZERS.get(name))
    return {k: p.default for k, p in sig.parameters.items()
            if k not in ("params", "foreach") and p.default is not inspect.Parameter.empty}


def build_optimizer(model: nn.Module, optim_cfg: Any, reg_cfg: Any = None) -> torch.optim.Optimizer:
    """Build the optimizer of a config for ``model``.

    Args:
        model: the network.
        optim_cfg: a :class:`~trainwell.config.OptimConfig`.
        reg_cfg: a :class:`~trainwell.config.RegConfig` (None: no penalties).

    Raises:
        TrainwellError: an option the optimizer does not take, a penalty or
            per-layer rate asked of a single-group optimizer (newton, lbfgs).
    """
    from trainwell.regularize import param_groups

    name = optim_cfg.name
    defaults = optimizer_defaults(name)
    kwargs = {k: getattr(optim_cfg, k) for k in FIRST_CLASS if k in defaults}
    for key, value in optim_cfg.options.items():
        if key not in defaults:
            raise TrainwellError(f"optim.options.{key} is not an option of {name}; "
                                 f"it takes: {', '.join(defaults)}")
        kwargs[key] = value
    l1 = getattr(reg_cfg, "l1", 0.0)
    l2 = getattr(reg_cfg, "l2", 0.0)
    wd = getattr(reg_cfg, "weight_decay", 0.0)
    if not OPTIMIZERS.entry(name).meta["chain"]:
        if l1 or l2 or wd or optim_cfg.lr_multipliers:
            raise TrainwellError(f"{name} takes one parameter group: reg.l1, reg.l2, reg.weight_decay and "
                                 "optim.lr_multipliers are not available with it")
        return _call(name, model.parameters(), kwargs)
    groups = param_groups(model, l1=l1, l2=l2, decoupled_weight_decay=wd,
                          exclude_bias_and_norm=getattr(reg_cfg, "exclude_bias_and_norm", True),
                          lr_multipliers=optim_cfg.lr_multipliers)
    for g in groups:
        g["lr"] = kwargs.get("lr", defaults["lr"]) * g["lr_multiplier"]
    if name == "adamw":  # its own decay is the decoupled one
        for g in groups:
            g["weight_decay"] = g.pop("decoupled_weight_decay")
        kwargs["weight_decay"] = wd
        wd = 0.0
    opt: Chain = _call(name, groups, kwargs)
    if l2:
        opt.transforms.insert(0, add_l2("l2"))
    if wd:
        opt.transforms.append(add_decayed_weights("decoupled_weight_decay"))
    if l1:
        if getattr(reg_cfg, "l1_mode", "proximal") == "proximal":
            opt.transforms.append(l1_proximal("l1"))
        else:
            opt.transforms.insert(0, add_l1("l1"))
    for g in opt.param_groups:
        opt.validate_group(g)
    return opt


def _call(name: str, params: Any, kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    try:
        return OPTIMIZERS.get(name)(params, **kwargs)
    except ValueError as err:
        raise TrainwellError(f"optimizer {name}: {err}") from None
