"""Second-order methods: Newton's method with the exact Hessian, for small models.

L-BFGS, the quasi-Newton method of the notes, is torch's own
(``torch.optim.LBFGS``); trainwell registers it by name and its trainer gives it
the closure it needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

__all__ = ["Newton", "newton"]


class Newton(torch.optim.Optimizer):
    """Newton's method: ``p <- p - lr * (H + damping * I)^-1 g``.

    The Hessian ``H`` of the loss over all parameters is computed exactly
    (one batched double-backward), so memory grows with the square of the
    parameter count: above ``max_params`` the optimizer refuses. ``damping``
    (Levenberg) keeps the step defined where ``H`` is singular or indefinite.

    The closure must compute the loss with a graph that can be differentiated
    twice: ``optimizer.zero_grad(); loss = f(); loss.backward(create_graph=True); return loss``
    (trainwell's trainer does this when ``optimizer.create_graph`` is True).

    Args:
        params: the parameters (one group).
        lr: step size; 1 is the full Newton step.
        damping: added to the Hessian's diagonal, >= 0.
        max_params: the largest parameter count allowed (default 4096: a
            4096 x 4096 float64 Hessian is 128 MiB).
        maximize: seek a maximum: Newton's step on ``-loss``,
            ``p <- p - lr * (-H + damping * I)^-1 (-g)`` (damping then keeps ``-H`` positive).
    """

    needs_closure = True
    create_graph = True

    def __init__(self, params: Iterable, lr: float = 1.0, damping: float = 1e-4, max_params: int = 4096, *,
                 maximize: bool = False) -> None:
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"invalid learning rate lr={lr!r}: allowed a finite value > 0")
        if not math.isfinite(damping) or damping < 0:
            raise ValueError(f"invalid damping={damping!r}: allowed a finite value >= 0")
        if not isinstance(maximize, bool):
            raise ValueError(f"invalid maximize={maximize!r}: allowed True or False")
        super().__init__(params, dict(lr=lr, damping=damping, maximize=maximize))
        if len(self.param_groups) != 1:
            raise ValueError("Newton takes a single parameter group")
        n = sum(p.numel() for p in self.param_groups[0]["params"])
        if n > max_params:
            raise ValueError(f"Newton's method needs the full {n} x {n} Hessian; this model has {n} parameters, "
                             f"more than max_params={max_params}. Use lbfgs (quasi-Newton) or a first-order "
                             "optimizer, or raise max_params")

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        if closure is None:
            raise ValueError("Newton needs a closure that calls loss.backward(create_graph=True) and returns the loss")
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.requires_grad]
        with torch.enable_grad():
            loss = closure()
            grads = [p.grad for p in params]
            if any(g is None or g.grad_fn is None for g in grads):
                raise ValueError("Newton's closure must call loss.backward(create_graph=True) so that the "
                                 "Hessian can be computed")
            flat = torch.cat([g.reshape(-1) for g in grads])  # (n,)
            eye = torch.eye(flat.numel(), dtype=flat.dtype, device=flat.device)
            rows = torch.autograd.grad(flat, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
        hessian = torch.cat([(torch.zeros(flat.numel(), p.numel(), dtype=flat.dtype, device=flat.device)
                              if r is None else r.reshape(flat.numel(), -1)) for r, p in zip(rows, params)], dim=1)
        hessian = (hessian + hessian.T) / 2  # (n, n), symmetric up to rounding
        g = flat.detach()
        if group.get("maximize", False):  # minimise -loss
            hessian, g = -hessian, -g
        system = hessian + group["damping"] * torch.eye(g.numel(), dtype=g.dtype, device=g.device)
        direction = torch.linalg.lstsq(system, g.unsqueeze(1)).solution.squeeze(1) \
            if group["damping"] == 0 else torch.linalg.solve(system, g)
        offset = 0
        for p in params:
            n = p.numel()
            p.add_(direction[offset:offset + n].view_as(p), alpha=-group["lr"])
            p.grad = p.grad.detach()  # break the graph held by the gradient (no reference cycle)
            offset += n
        return loss


def newton(params: Iterable, lr: float = 1.0, damping: float = 1e-4, max_params: int = 4096, *,
           maximize: bool = False) -> Newton:
    """Newton's method with the exact Hessian: ``p <- p - lr * (H + damping * I)^-1 g`` (see :class:`Newton`)."""
    return Newton(params, lr=lr, damping=damping, max_params=max_params, maximize=maximize)
