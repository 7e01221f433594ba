"""A chain of gradient transforms, exposed as a ``torch.optim.Optimizer``.

Because it is a real ``torch.optim.Optimizer`` - per-parameter state in
``self.state[p]``, hyper-parameters in ``param_groups`` - every learning-rate
scheduler, ``state_dict`` / ``load_state_dict``, ``zero_grad`` and any
hand-written training loop work unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from trainwell.optim.transforms import Ratio, SkipStep, Transform

__all__ = ["Chain", "chain"]


def _check_lr(lr: Any) -> None:
    if isinstance(lr, torch.Tensor):
        lr = float(lr)
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"invalid learning rate lr={lr!r}: allowed a finite value >= 0")


class Chain(torch.optim.Optimizer):
    """Apply ``transforms`` in order to each group's gradients, then ``p <- p - lr * u``.

    Args:
        params: parameters or parameter groups (dicts), as for any torch optimizer.
        transforms: the stages of the update rule (see :mod:`trainwell.optim.transforms`).
        defaults: hyper-parameters every group starts with (``lr`` and what the
            transforms read, e.g. ``momentum``, ``betas``, ``eps``).
        foreach: use the ``torch._foreach_*`` kernels (default: yes, unless the
            parameters are spread over several devices or dtypes).

    Attributes:
        record_stats: set True to have the next steps record, per group, the
            update norm, the update/weight ratio and the effective per-element
            step size of adaptive methods in ``last_stats`` (costs a few passes
            over the parameters; off by default).
        skipped_steps: how many group steps a ``skip_non_finite`` stage skipped.

    Example:
        >>> from trainwell.optim.transforms import add_l2, trace
        >>> opt = Chain(model.parameters(), [add_l2(), trace()], dict(lr=0.1, momentum=0.9, weight_decay=0))
    """

    def __init__(self, params: Iterable, transforms: Sequence[Transform], defaults: dict[str, Any],
                 *, foreach: bool | None = None) -> None:
        if "lr" not in defaults:
            raise ValueError("a chain's defaults need a learning rate 'lr'")
        self.transforms = list(transforms)
        self.foreach = foreach
        self.needs_step = any(t.needs_step for t in self.transforms)
        self.record_stats = False
        self.last_stats: list[dict[str, float]] = []
        self.skipped_steps = 0
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._check(self.param_groups[-1])

    def _check(self, group: dict[str, Any]) -> None:
        _check_lr(group["lr"])
        for t in self.transforms:
            for key, (ok, allowed) in t.hyper.items():
                if key in group and not ok(group[key]):
                    raise ValueError(f"invalid {key}={group[key]!r} for {type(t).__name__}: allowed {allowed}")

    def _use_foreach(self, params: list[torch.Tensor]) -> bool:
        if self.foreach is not None:
            return self.foreach
        first = params[0]
        return all(p.device == first.device and p.dtype == first.dtype for p in params)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stats = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("trainwell's optimizers do not support sparse gradients")
            states = [self.state[p] for p in params]
            if self.needs_step:
                for s in states:
                    s["step"] = s["step"] + 1 if "step" in s else torch.tensor(1.0)
            fast = self._use_foreach(params)
            updates = [p.grad for p in params]
            try:
                for t in self.transforms:
                    if fast:
                        if isinstance(updates, Ratio) and not t.is_identity(group):
                            updates = updates.materialize()
                        updates = t.foreach(updates, params, states, group)
                    else:
                        updates = t.plain(updates, params, states, group)
            except SkipStep:
                self.skipped_steps += 1
                if self.needs_step:
                    for s in states:
                        s["step"] -= 1
                continue
            if self.record_stats and isinstance(updates, Ratio):
                updates = updates.materialize()
            if self.record_stats:
                stats.append(self._stats(params, updates, states, group))
            if isinstance(updates, Ratio):  # p <- p - lr * num / den in one pass
                torch._foreach_addcdiv_(params, updates.num, updates.den, value=-group["lr"])
            elif fast:
                torch._foreach_add_(params, updates, alpha=-group["lr"])
            else:
                for p, u in zip(params, updates):
                    p.add_(u, alpha=-group["lr"])
            for t in self.transforms:
                t.after_apply(params, states, group)
        if self.record_stats:
            self.last_stats = stats
        return loss

    def _stats(self, params, updates, states, group) -> dict[str, float]:
        lr = group["lr"]
        update_norm = lr * float(torch.linalg.vector_norm(torch.stack([u.norm() for u in updates])))
        param_norm = float(torch.linalg.vector_norm(torch.stack([p.norm() for p in params])))
        out = {"lr": lr, "update_norm": update_norm, "param_norm": param_norm,
               "update_ratio": update_norm / param_norm if param_norm > 0 else math.inf}
        for t in self.transforms:
            scales = t.scale(states, group)
            if scales:
                flat = torch.cat([s.reshape(-1) for s in scales]) * lr
                out.update(step_size_min=float(flat.min()), step_size_median=float(flat.median()),
                           step_size_max=float(flat.max()))
        return out

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.transforms))}; lr={self.defaults['lr']})"


def chain(params: Iterable, *transforms: Transform, foreach: bool | None = None, **defaults: Any) -> Chain:
    """Build an optimizer from transforms: ``chain(params, add_l2(), trace(), lr=0.1, momentum=0.9, ...)``."""
    return Chain(params, transforms, defaults, foreach=foreach)
