"""Momentum and adaptive scaling: the stages that make SGD into momentum, AdaGrad, RMSProp, Adadelta and Adam.

An update rule is a chain ``g -> t1 -> t2 -> ... -> u`` followed by the step
``p <- p - lr * u`` (see :mod:`trainwell.optim.base` for the protocol every
stage follows and :class:`~trainwell.optim.chain.Chain` for the step). The
stages keep their buffers in ``state[p]`` under torch.optim's names
(``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``,
``square_avg``, ``grad_avg``, ``sum``, ``acc_delta``; ``step`` counted by the
chain), so a state_dict moves between trainwell and torch.optim both ways.
Penalties are in :mod:`trainwell.optim.penalties`, clipping and the
non-finite guard in :mod:`trainwell.optim.clipping`.

The notes' sentence "Adam = Momentum + RMSProp" is :class:`ScaleByAdam`: an
exponential moving average of gradients (the momentum of :class:`Trace` with
dampening) divided by the root of a moving average of squared gradients (the
denominator of :class:`ScaleByRms`), each corrected for its zero start by
1 - beta^t.
"""

from __future__ import annotations

import math

import torch

from trainwell.optim.base import BETAS, BOOL, NON_NEGATIVE, POSITIVE, UNIT, Ratio, Transform, buffers, step_counts

__all__ = ["ScaleByAdadelta", "ScaleByAdam", "ScaleByRms", "ScaleBySumOfSquares", "Trace", "scale_by_adadelta",
           "scale_by_adam", "scale_by_rms", "scale_by_sum_of_squares", "trace"]


# ------------------------------------------------------------------ momentum

class Trace(Transform):
    """Momentum: ``v <- mu * v + (1 - dampening) * u``; the update is ``v``.

    Nesterov's momentum looks ahead along the velocity: the update is
    ``u + mu * v`` (it needs ``mu > 0`` and no dampening, as in torch). As in
    torch.optim, ``v`` starts as a copy of the first update, no buffer is kept
    while ``mu = 0``, and sparse updates stay sparse.

    Args:
        nesterov: fixed Nesterov or not; None (the sgd family) reads
            ``group["nesterov"]``, so a torch.optim.SGD state_dict's choice carries over.
    """

    hyper = {"momentum": UNIT, "dampening": UNIT, "nesterov": BOOL}
    sparse = True

    def __init__(self, nesterov: bool | None = None) -> None:
        self.nesterov = nesterov

    def validate(self, group):
        super().validate(group)
        if self._nesterov(group) and (group.get("momentum", 0) <= 0 or group.get("dampening", 0) != 0):
            raise ValueError(f"invalid nesterov=True with momentum={group.get('momentum')!r} and dampening="
                             f"{group.get('dampening', 0)!r}: allowed momentum > 0 and dampening 0")

    def is_identity(self, group):
        return group["momentum"] == 0

    def _nesterov(self, group: Group) -> bool:
        return group.get("nesterov", False) if self.nesterov is None else self.nesterov

    def plain(self, updates, params, states, group):
        mu = group["momentum"]
        if mu == 0:
            return updates
        out = []
        for u, state in zip(updates, states):
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = u.detach().clone()
            else:
                buf.mul_(mu).add_(u, alpha=1 - group.get("dampening", 0.0))
            out.append(u.add(buf, alpha=mu) if self._nesterov(group) else buf)
        return out

    def foreach(self, updates, params, states, group):
        mu = group["momentum"]
        if mu == 0:
            return updates
        if any(s.get("momentum_buffer") is None for s in states):  # first step: buffers start as copies
            return self.plain(updates, params, states, group)
        bufs = [s["momentum_buffer"] for s in states]
        torch._foreach_mul_(bufs, mu)
        torch._foreach_add_(bufs, updates, alpha=1 - group.get("dampening", 0.0))
        return torch._foreach_add(updates, bufs, alpha=mu) if self._nesterov(group) else bufs

    def __repr__(self) -> str:
        return f"Trace(nesterov={self.nesterov})"


def trace(nesterov: bool | None = None) -> Trace:
    """Momentum ``v <- mu v + (1 - dampening) u`` (Nesterov: ``u + mu v``)."""
    return Trace(nesterov)


# ------------------------------------------------------------------ adaptive scaling

class ScaleBySumOfSquares(Transform):
    """AdaGrad: ``s <- s + u^2``; ``u / (sqrt(s) + eps)``, times ``1/(1 + (t-1) * lr_decay)``.

    Each parameter's step shrinks with the gradients it has seen: large for
    rare features, small for frequent ones. A sparse gradient updates only the
    rows it holds (``s`` stays dense), as in ``torch.optim.Adagrad``.
    """

    hyper = {"eps": NON_NEGATIVE, "lr_decay": NON_NEGATIVE, "initial_accumulator_value": NON_NEGATIVE}
    needs_step = True
    sparse = True

    def _sums(self, params, states, group):
        return buffers(states, params, "sum", group.get("initial_accumulator_value", 0.0))

    def plain(self, updates, params, states, group):
        sums, out = self._sums(params, states, group), []
        for u, s, t in zip(updates, sums, step_counts(states)):
            decay = 1.0 / (1.0 + (t - 1) * group.get("lr_decay", 0.0))
            if u.is_sparse:
                out.append(self._sparse(u, s, group["eps"], decay))
                continue
            s.addcmul_(u, u, value=1.0)
            out.append(u / s.sqrt().add_(group["eps"]) * decay)
        return out

    @staticmethod
    def _sparse(u, s, eps, decay):
        """The update of the rows a sparse gradient holds (the update is non-linear: indices made unique)."""
        u = u.coalesce()
        index, values = u.indices(), u.values()
        s.add_(torch.sparse_coo_tensor(index, values * values, u.shape, check_invariants=False))
        std = s.sparse_mask(u).coalesce().values().sqrt_().add_(eps)
        return torch.sparse_coo_tensor(index, values / std * decay, u.shape, check_invariants=False)

    def foreach(self, updates, params, states, group):
        sums = self._sums(params, states, group)
        torch._foreach_addcmul_(sums, updates, updates, value=1.0)
        den = torch._foreach_sqrt(sums)
        torch._foreach_add_(den, group["eps"])
        if group.get("lr_decay", 0.0):
            torch._foreach_mul_(den, [1.0 + (t - 1) * group["lr_decay"] for t in step_counts(states)])
        return Ratio(updates, den)

    def scale(self, states, group):
        return [1.0 / (s["sum"].sqrt() + group["eps"]) for s in states if "sum" in s]


def scale_by_sum_of_squares() -> ScaleBySumOfSquares:
    """AdaGrad's scaling ``u / (sqrt(sum of u^2) + eps)``."""
    return ScaleBySumOfSquares()


class ScaleByRms(Transform):
    """RMSProp: ``r <- alpha * r + (1 - alpha) * u^2``; ``u / (sqrt(r) + eps)``.

    A moving average instead of AdaGrad's sum, so old gradients are forgotten
    and the step does not shrink to nothing. ``centered`` also tracks the mean
    gradient and divides by the estimated standard deviation. The step is
    counted (``state["step"]``) only so that torch.optim.RMSprop can continue.
    """

    hyper = {"alpha": UNIT, "eps": NON_NEGATIVE, "centered": BOOL}
    needs_step = True

    def _denominators(self, updates, params, states, group, fe: bool) -> Tensors:
        alpha = group["alpha"]
        sq = buffers(states, params, "square_avg")
        if fe:
            torch._foreach_mul_(sq, alpha)
            torch._foreach_addcmul_(sq, updates, updates, value=1 - alpha)
        else:
            for r, u in zip(sq, updates):
                r.mul_(alpha).addcmul_(u, u, value=1 - alpha)
        if group.get("centered", False):
            avg = buffers(states, params, "grad_avg")
            for a, u in zip(avg, updates):
                a.lerp_(u, 1 - alpha)
            var = [r.addcmul(a, a, value=-1) for r, a in zip(sq, avg)]
        else:
            var = sq
        if fe:
            denom = torch._foreach_sqrt(var)
            torch._foreach_add_(denom, group["eps"])
            return denom
        return [v.sqrt().add_(group["eps"]) for v in var]

    def plain(self, updates, params, states, group):
        return [u / d for u, d in zip(updates, self._denominators(updates, params, states, group, False))]

    def foreach(self, updates, params, states, group):
        return Ratio(updates, self._denominators(updates, params, states, group, True))

    def scale(self, states, group):
        return [1.0 / (s["square_avg"].sqrt() + group["eps"]) for s in states if "square_avg" in s]


def scale_by_rms() -> ScaleByRms:
    """RMSProp's scaling ``u / (sqrt(moving average of u^2) + eps)``."""
    return ScaleByRms()


class ScaleByAdadelta(Transform):
    """Adadelta: the step is ``RMS(past updates) / RMS(gradients) * u`` - units match, no global lr needed.

    ``r <- rho r + (1-rho) u^2``; ``d = sqrt(a + eps) / sqrt(r + eps) * u``;
    ``a <- rho a + (1-rho) d^2``. The step is counted (``state["step"]``) only
    so that torch.optim.Adadelta can continue.
    """

    hyper = {"rho": UNIT, "eps": POSITIVE}
    needs_step = True

    def plain(self, updates, params, states, group):
        rho, eps = group["rho"], group["eps"]
        out = []
        for u, r, a in zip(updates, buffers(states, params, "square_avg"), buffers(states, params, "acc_delta")):
            r.mul_(rho).addcmul_(u, u, value=1 - rho)
            delta = a.add(eps).sqrt_().div_(r.add(eps).sqrt_()).mul_(u)
            a.mul_(rho).addcmul_(delta, delta, value=1 - rho)
            out.append(delta)
        return out

    def foreach(self, updates, params, states, group):
        rho, eps = group["rho"], group["eps"]
        sq, acc = buffers(states, params, "square_avg"), buffers(states, params, "acc_delta")
        torch._foreach_mul_(sq, rho)
        torch._foreach_addcmul_(sq, updates, updates, value=1 - rho)
        std = torch._foreach_add(sq, eps)
        torch._foreach_sqrt_(std)
        delta = torch._foreach_add(acc, eps)
        torch._foreach_sqrt_(delta)
        torch._foreach_div_(delta, std)
        torch._foreach_mul_(delta, updates)
        torch._foreach_mul_(acc, rho)
        torch._foreach_addcmul_(acc, delta, delta, value=1 - rho)
        return delta

    def scale(self, states, group):
        eps = group["eps"]
        return [(s["acc_delta"] + eps).sqrt() / (s["square_avg"] + eps).sqrt() for s in states if "acc_delta" in s]


def scale_by_adadelta() -> ScaleByAdadelta:
    """Adadelta's scaling ``RMS(past updates) / RMS(gradients) * u``."""
    return ScaleByAdadelta()


class ScaleByAdam(Transform):
    """Adam = Momentum + RMSProp, both bias-corrected.

    ``m <- b1 m + (1-b1) u`` (momentum: a moving average of gradients),
    ``v <- b2 v + (1-b2) u^2`` (RMSProp: a moving average of squares),
    update ``m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)`` and
    ``v_hat = v / (1 - b2^t)``. The correction divides by 1 - beta^t (not
    1 - beta as seed 001 writes): both averages start at zero and would
    otherwise be too small in the first steps. With it, the first step has
    size ``lr`` in every coordinate; without it (``bias_correction=False``),
    ``lr * (1-b1) / sqrt(1-b2)``.

    AMSGrad (``group["amsgrad"]``, Reddi et al. 2018) divides by the running
    maximum ``v_max <- max(v_max, v)`` instead of ``v``, so that the step size
    of a coordinate never grows back.
    """

    hyper = {"betas": BETAS, "eps": NON_NEGATIVE, "amsgrad": BOOL}
    needs_step = True

    def __init__(self, bias_correction: bool = True) -> None:
        self.bias_correction = bias_correction

    def _corrections(self, states, group) -> tuple[list[float], list[float]]:
        b1, b2 = group["betas"]
        if not self.bias_correction:
            return [1.0] * len(states), [1.0] * len(states)
        steps = step_counts(states)
        return [1 - b1 ** t for t in steps], [math.sqrt(1 - b2 ** t) for t in steps]

    def plain(self, updates, params, states, group):
        b1, b2 = group["betas"]
        c1, c2 = self._corrections(states, group)
        out = []
        amsgrad = group.get("amsgrad", False)
        maxima = buffers(states, params, "max_exp_avg_sq") if amsgrad else [None] * len(params)
        for u, m, v, vmax, k1, k2 in zip(updates, buffers(states, params, "exp_avg"),
                                         buffers(states, params, "exp_avg_sq"), maxima, c1, c2):
            m.lerp_(u, 1 - b1)                               # momentum
            v.mul_(b2).addcmul_(u, u, value=1 - b2)          # RMSProp
            if amsgrad:
                torch.maximum(vmax, v, out=vmax)
            out.append((m / k1) / ((vmax if amsgrad else v).sqrt() / k2).add_(group["eps"]))
        return out

    def foreach(self, updates, params, states, group):
        b1, b2 = group["betas"]
        c1, c2 = self._corrections(states, group)
        m, v = buffers(states, params, "exp_avg"), buffers(states, params, "exp_avg_sq")
        torch._foreach_lerp_(m, updates, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, updates, updates, value=1 - b2)
        if group.get("amsgrad", False):
            v = buffers(states, params, "max_exp_avg_sq")
            torch._foreach_maximum_(v, buffers(states, params, "exp_avg_sq"))
        # m_hat / (sqrt(v_hat) + eps) = m / (sqrt(v) * c1/c2 + eps * c1)
        den = torch._foreach_sqrt(v)
        torch._foreach_mul_(den, [k1 / k2 for k1, k2 in zip(c1, c2)])
        torch._foreach_add_(den, [group["eps"] * k1 for k1 in c1])
        return Ratio(m, den)

    def scale(self, states, group):
        c1, c2 = self._corrections(states, group)
        return [1.0 / ((s.get("max_exp_avg_sq", s["exp_avg_sq"]).sqrt() / k2 + group["eps"]) * k1)
                for s, k1, k2 in zip(states, c1, c2) if "exp_avg_sq" in s]

    def __repr__(self) -> str:
        return f"ScaleByAdam(bias_correction={self.bias_correction})"


def scale_by_adam(bias_correction: bool = True) -> ScaleByAdam:
    """Adam's bias-corrected ``m_hat / (sqrt(v_hat) + eps)`` (AMSGrad with ``group["amsgrad"]``)."""
    return ScaleByAdam(bias_correction)
