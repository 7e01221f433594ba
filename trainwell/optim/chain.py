"""A chain of gradient transforms, exposed as a ``torch.optim.Optimizer``.

Because it is a real ``torch.optim.Optimizer`` - per-parameter state in
``self.state[p]`` under torch.optim's names, hyper-parameters in
``param_groups`` - every learning-rate scheduler, ``state_dict`` /
``load_state_dict`` (to and from torch.optim's own optimizers), ``zero_grad``,
step hooks, ``copy.deepcopy`` / ``pickle`` and any hand-written training loop
work unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from trainwell.optim.base import BOOL, Ratio, SkipStep, Transform

__all__ = ["Chain", "chain"]

# the attributes of a Chain that torch.optim.Optimizer's own pickling does not keep
_OWN = ("transforms", "foreach", "needs_step", "record_stats", "last_stats", "skipped_steps")


def _check_lr(lr: Any) -> None:
    if isinstance(lr, torch.Tensor):
        lr = float(lr)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"invalid learning rate lr={lr!r}: allowed a finite value >= 0")


def _real(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.view_as_real(t) if t.is_complex() else t for t in tensors]


def _states_as_real(pairs: list[tuple[torch.Tensor, dict[str, Any]]]) -> None:
    """A complex parameter's complex buffers as real views, for the transforms."""
    for _, s in pairs:
        for k, v in s.items():
            if isinstance(v, torch.Tensor) and v.is_complex():
                s[k] = torch.view_as_real(v)


def _states_as_complex(pairs: list[tuple[torch.Tensor, dict[str, Any]]]) -> None:
    """Back to complex: every buffer shaped like the parameter's real view (as torch.optim keeps them)."""
    for p, s in pairs:
        shape = p.shape + (2,)
        for k, v in s.items():
            if isinstance(v, torch.Tensor) and not v.is_complex() and v.shape == shape:
                s[k] = torch.view_as_complex(v)


class Chain(torch.optim.Optimizer):
    """Apply ``transforms`` in order to each group's gradients, then ``p <- p - lr * u``.

    With ``maximize`` set in a group the chain starts from ``-g`` (gradient
    ascent), as torch.optim does. Complex parameters are updated as their real
    views (real and imaginary parts as two coordinates), as torch.optim does;
    sparse gradients go through the plain kernels of chains whose every
    transform accepts them (sgd, momentum, nesterov, adagrad).

    Args:
        params: parameters or parameter groups (dicts), as for any torch optimizer.
        transforms: the stages of the update rule (see :mod:`trainwell.optim.transforms`).
        defaults: hyper-parameters every group starts with (``lr`` and what the
            transforms read, e.g. ``momentum``, ``betas``, ``eps``; ``maximize``).
        foreach: use the ``torch._foreach_*`` kernels (default: yes, unless the
            parameters are spread over several devices or dtypes).

    Attributes:
        record_stats: set True to have the next steps record, per group, the
            update norm, the update/weight ratio and the effective per-element
            step size of adaptive methods in ``last_stats`` (costs a few passes
            over the parameters; off by default).
        skipped_steps: how many group steps a ``skip_non_finite`` stage skipped.

    Raises:
        ValueError: no ``lr`` in ``defaults``, or a group's setting outside
            what a transform allows (the group is then not added).

    Example:
        >>> from trainwell.optim.penalties import add_l2
        >>> from trainwell.optim.transforms import trace
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

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update({k: self.__dict__[k] for k in _OWN})
        return state

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group after checking its settings; a refused group leaves ``param_groups`` unchanged."""
        if isinstance(param_group, dict):
            self.validate_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    def validate_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError naming the setting of ``group`` that no transform of the chain allows."""
        _check_lr(group["lr"])
        if "maximize" in group and not BOOL[0](group["maximize"]):
            raise ValueError(f"invalid maximize={group['maximize']!r}: allowed {BOOL[1]}")
        for t in self.transforms:
            t.validate(group)

    def _use_foreach(self, params: list[torch.Tensor]) -> bool:
        if self.foreach is not None:
            return self.foreach
        first = params[0]
        return all(p.device == first.device and p.dtype == first.dtype for p in params)

    def _sparse_ok(self, params: list[torch.Tensor]) -> bool:
        if not any(p.grad.is_sparse for p in params):
            return False
        refusing = [type(t).__name__ for t in self.transforms if not t.sparse]
        if refusing:
            raise RuntimeError(f"sparse gradients are not supported by {', '.join(refusing)}; "
                               "sgd, momentum, nesterov and adagrad accept them")
        if any(p.is_complex() for p in params):
            raise RuntimeError("sparse gradients of complex parameters are not supported")
        return True

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a gradient; ``closure`` re-evaluates the loss first."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stats = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            sparse = self._sparse_ok(params)
            states = [self.state[p] for p in params]
            complex_states = [(p, s) for p, s in zip(params, states) if p.is_complex()]
            if self.needs_step:
                for s in states:
                    s["step"] = s["step"] + 1 if "step" in s else torch.tensor(1.0)
            updates = [p.grad for p in params]
            if group.get("maximize", False):
                updates = [-g for g in updates]
            if complex_states:
                params, updates = _real(params), _real(updates)
                _states_as_real(complex_states)
            try:
                updates = self._transform(updates, params, states, group, not sparse and self._use_foreach(params))
            except SkipStep:
                self.skipped_steps += 1
                if self.needs_step:
                    for s in states:
                        s["step"] -= 1
                continue
            finally:
                _states_as_complex(complex_states)
            if self.record_stats and isinstance(updates, Ratio):
                updates = updates.materialize()
            if self.record_stats:
                stats.append(self._stats(params, updates, states, group))
            self._apply(params, updates, group, not sparse and self._use_foreach(params))
            for t in self.transforms:
                t.after_apply(params, states, group)
        if self.record_stats:
            self.last_stats = stats
        return loss

    def _transform(self, updates, params, states, group, fast: bool):
        for t in self.transforms:
            if fast:
                if isinstance(updates, Ratio) and not t.is_identity(group):
                    updates = updates.materialize()
                updates = t.foreach(updates, params, states, group)
            else:
                updates = t.plain(updates, params, states, group)
        return updates

    @staticmethod
    def _apply(params, updates, group, fast: bool) -> None:
        lr = float(group["lr"])
        if isinstance(updates, Ratio):  # p <- p - lr * num / den in one pass
            torch._foreach_addcdiv_(params, updates.num, updates.den, value=-lr)
        elif fast:
            torch._foreach_add_(params, updates, alpha=-lr)
        else:
            for p, u in zip(params, updates):
                p.add_(u, alpha=-lr)

    def _stats(self, params, updates, states, group) -> dict[str, float]:
        lr = float(group["lr"])
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
