"""Gradient transforms: the small pieces every update rule is chained from.

An update rule is a chain ``g -> t1 -> t2 -> ... -> u`` followed by the step
``p <- p - lr * u`` (after optax and fastai's steppers). Each transform reads
its hyper-parameters from the parameter group (so schedulers and per-layer
settings work as in torch.optim) and keeps its per-parameter buffers in the
optimizer's ``state[p]`` under torch.optim's names (``momentum_buffer``,
``exp_avg``, ``exp_avg_sq``, ``square_avg``, ``sum``, ``acc_delta``).

Every transform has a plain kernel (``plain``: a Python loop of per-tensor
ops, the reference) and may have a ``foreach`` kernel (``torch._foreach_*``
over the whole group, the fast path, tested against the plain one).
Transforms never modify their input in place: it may be ``p.grad`` or another
transform's buffer. A fast kernel may return a lazy :class:`Ratio` so that the
final division is fused into the parameter update.

The notes' sentence "Adam = Momentum + RMSProp" is :class:`ScaleByAdam`: an
exponential moving average of gradients (the momentum of :class:`Trace` with
dampening) divided by the root of a moving average of squared gradients (the
denominator of :class:`ScaleByRms`), each corrected for its zero start by
1 - beta^t.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["AddL1Subgradient", "AddScaledParams", "ClipByGlobalNorm", "ClipByValue", "L1Proximal",
           "NonFiniteUpdateError", "Ratio", "ScaleByAdadelta", "ScaleByAdam", "ScaleByRms", "ScaleBySumOfSquares",
           "SkipNonFinite", "SkipStep", "Trace", "Transform", "add_decayed_weights", "add_l1", "add_l2",
           "clip_by_global_norm", "clip_by_value", "l1_proximal", "scale_by_adadelta", "scale_by_adam",
           "scale_by_rms", "scale_by_sum_of_squares", "skip_non_finite", "trace"]

Tensors = list[Tensor]
States = list[dict[str, Any]]
Group = dict[str, Any]
Check = Callable[[Any], bool]


class SkipStep(Exception):
    """Raised by a transform to leave the whole group's parameters and state as they were."""


class NonFiniteUpdateError(FloatingPointError):
    """An update held NaN or Inf and the chain was told to stop on it."""


def _range(low: float, high: float, high_open: bool = True) -> tuple[Check, str]:
    right = "<" if high_open else "<="
    return ((lambda v: isinstance(v, (int, float)) and math.isfinite(v) and low <= v and
             (v < high if high_open else v <= high)), f"{low} <= value {right} {high}")


NON_NEGATIVE = ((lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v >= 0), "a finite value >= 0")
POSITIVE = ((lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v > 0), "a finite value > 0")
UNIT = _range(0.0, 1.0)
BOOL = ((lambda v: isinstance(v, bool)), "True or False")
BETAS = ((lambda v: isinstance(v, (tuple, list)) and len(v) == 2 and all(UNIT[0](b) for b in v)),
         "two values, each 0 <= beta < 1")


def _buffers(states: States, params: Tensors, key: str, fill: float = 0.0) -> Tensors:
    """The buffers ``state[key]`` of every parameter, created (as ``fill``) on first use."""
    out = []
    for state, p in zip(states, params):
        buf = state.get(key)
        if buf is None:
            buf = state[key] = torch.full_like(p, fill, memory_format=torch.preserve_format)
        out.append(buf)
    return out


class Ratio:
    """A lazy update ``num / den`` from a fast kernel (``den`` is a fresh temporary it owns).

    The chain's last step applies it as ``p.addcdiv_(num, den, value=-lr)``,
    one pass, as torch.optim's kernels do; any transform that needs the
    update as tensors gets it through :meth:`materialize`, which divides in
    place into ``den`` (allocating a large tensor costs more than a pass over
    it on CPUs whose fresh pages fault: ~10 ms per 13 MB on this VM).
    """

    __slots__ = ("num", "den")

    def __init__(self, num: Tensors, den: Tensors) -> None:
        self.num, self.den = num, den

    def materialize(self) -> Tensors:
        torch._foreach_reciprocal_(self.den)
        torch._foreach_mul_(self.den, self.num)
        return self.den


def _steps(states: States) -> list[float]:
    return [float(s["step"]) for s in states]


class Transform:
    """One stage of an update rule.

    Attributes:
        hyper: hyper-parameter name -> (check, description of the allowed range).
        needs_step: whether the chain must count steps per parameter (``state["step"]``).
    """

    hyper: dict[str, tuple[Check, str]] = {}
    needs_step = False

    def plain(self, updates: Tensors, params: Tensors, states: States, group: Group) -> Tensors:
        """The reference kernel: one tensor at a time."""
        raise NotImplementedError

    def foreach(self, updates: Tensors, params: Tensors, states: States, group: Group) -> Tensors:
        """The fast kernel over the whole group (defaults to the plain one)."""
        return self.plain(updates, params, states, group)

    def after_apply(self, params: Tensors, states: States, group: Group) -> None:
        """Runs after ``p <- p - lr * u`` (proximal steps live here)."""

    def scale(self, states: States, group: Group) -> Tensors | None:
        """For adaptive transforms: the per-element factor the gradient is scaled by."""
        return None

    def is_identity(self, group: Group) -> bool:
        """True when, with this group's settings, the update passes through unchanged."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ------------------------------------------------------------------ weights and penalties

class AddScaledParams(Transform):
    """``u + c * p`` with ``c = group[key]``.

    Placed first it is the gradient of an L2 penalty ``c/2 * ||p||^2`` (torch's
    ``weight_decay`` in SGD and Adam: the penalty then goes through the
    adaptive scaling). Placed after the scaling it is decoupled weight decay
    (AdamW): every weight shrinks by ``lr * c`` whatever its gradient history.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.hyper = {key: NON_NEGATIVE}

    def plain(self, updates, params, states, group):
        c = group[self.key]
        return updates if c == 0 else [u.add(p, alpha=c) for u, p in zip(updates, params)]

    def foreach(self, updates, params, states, group):
        c = group[self.key]
        return updates if c == 0 else torch._foreach_add(updates, params, alpha=c)

    def is_identity(self, group):
        return group[self.key] == 0

    def __repr__(self) -> str:
        return f"AddScaledParams({self.key!r})"


def add_l2(key: str = "weight_decay") -> AddScaledParams:
    """Gradient of the L2 penalty ``key/2 * ||p||^2``; place it first in a chain."""
    return AddScaledParams(key)


def add_decayed_weights(key: str = "weight_decay") -> AddScaledParams:
    """Decoupled weight decay; place it after the adaptive scaling (AdamW)."""
    return AddScaledParams(key)


class AddL1Subgradient(Transform):
    """``u + c * sign(p)``: the sub-gradient of ``c * ||p||_1`` (weights hover around 0, rarely hit it)."""

    def __init__(self, key: str = "l1") -> None:
        self.key = key
        self.hyper = {key: NON_NEGATIVE}

    def plain(self, updates, params, states, group):
        c = group[self.key]
        return updates if c == 0 else [u.add(p.sign(), alpha=c) for u, p in zip(updates, params)]

    def foreach(self, updates, params, states, group):
        c = group[self.key]
        return updates if c == 0 else torch._foreach_add(updates, torch._foreach_sign(params), alpha=c)


def add_l1(key: str = "l1") -> AddL1Subgradient:
    return AddL1Subgradient(key)


class L1Proximal(Transform):
    """The proximal step of ``c * ||p||_1``: after the update, ``p <- sign(p) * max(|p| - lr*c, 0)``.

    Unlike the sub-gradient it sets small weights to exactly zero: L1's feature
    selection (seed 002).
    """

    def __init__(self, key: str = "l1") -> None:
        self.key = key
        self.hyper = {key: NON_NEGATIVE}

    def plain(self, updates, params, states, group):
        return updates

    foreach = plain

    def is_identity(self, group):
        return True

    def after_apply(self, params, states, group):
        threshold = group["lr"] * group[self.key]
        if threshold == 0:
            return
        for p in params:
            p.copy_(p.sign() * (p.abs() - threshold).clamp_(min=0))


def l1_proximal(key: str = "l1") -> L1Proximal:
    return L1Proximal(key)


# ------------------------------------------------------------------ momentum

class Trace(Transform):
    """Momentum: ``v <- mu * v + (1 - dampening) * u``; the update is ``v``.

    Nesterov's momentum looks ahead along the velocity: the update is
    ``u + mu * v``. As in torch.optim, ``v`` starts as a copy of the first
    update and no buffer is kept while ``mu = 0``.
    """

    hyper = {"momentum": UNIT, "dampening": UNIT, "nesterov": BOOL}

    def __init__(self, nesterov: bool | None = None) -> None:
        self.nesterov = nesterov  # None: read group["nesterov"]

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


def trace(nesterov: bool | None = None) -> Trace:
    return Trace(nesterov)


# ------------------------------------------------------------------ adaptive scaling

class ScaleBySumOfSquares(Transform):
    """AdaGrad: ``s <- s + u^2``; ``u / (sqrt(s) + eps)``, times ``1/(1 + (t-1) * lr_decay)``.

    Each parameter's step shrinks with the gradients it has seen: large for
    rare features, small for frequent ones.
    """

    hyper = {"eps": NON_NEGATIVE, "lr_decay": NON_NEGATIVE, "initial_accumulator_value": NON_NEGATIVE}
    needs_step = True

    def _sums(self, params, states, group):
        return _buffers(states, params, "sum", group.get("initial_accumulator_value", 0.0))

    def plain(self, updates, params, states, group):
        sums, out = self._sums(params, states, group), []
        for u, s, t in zip(updates, sums, _steps(states)):
            s.addcmul_(u, u, value=1.0)
            decay = 1.0 / (1.0 + (t - 1) * group.get("lr_decay", 0.0))
            out.append(u / s.sqrt().add_(group["eps"]) * decay)
        return out

    def foreach(self, updates, params, states, group):
        sums = self._sums(params, states, group)
        torch._foreach_addcmul_(sums, updates, updates, value=1.0)
        den = torch._foreach_sqrt(sums)
        torch._foreach_add_(den, group["eps"])
        if group.get("lr_decay", 0.0):
            torch._foreach_mul_(den, [1.0 + (t - 1) * group["lr_decay"] for t in _steps(states)])
        return Ratio(updates, den)

    def scale(self, states, group):
        return [1.0 / (s["sum"].sqrt() + group["eps"]) for s in states if "sum" in s]


def scale_by_sum_of_squares() -> ScaleBySumOfSquares:
    return ScaleBySumOfSquares()


class ScaleByRms(Transform):
    """RMSProp: ``r <- alpha * r + (1 - alpha) * u^2``; ``u / (sqrt(r) + eps)``.

    A moving average instead of AdaGrad's sum, so old gradients are forgotten
    and the step does not shrink to nothing. ``centered`` also tracks the mean
    gradient and divides by the estimated standard deviation.
    """

    hyper = {"alpha": UNIT, "eps": NON_NEGATIVE, "centered": BOOL}

    def _denominators(self, updates, params, states, group, fe: bool) -> Tensors:
        alpha = group["alpha"]
        sq = _buffers(states, params, "square_avg")
        if fe:
            torch._foreach_mul_(sq, alpha)
            torch._foreach_addcmul_(sq, updates, updates, value=1 - alpha)
        else:
            for r, u in zip(sq, updates):
                r.mul_(alpha).addcmul_(u, u, value=1 - alpha)
        if group.get("centered", False):
            avg = _buffers(states, params, "grad_avg")
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
    return ScaleByRms()


class ScaleByAdadelta(Transform):
    """Adadelta: the step is ``RMS(past updates) / RMS(gradients) * u`` - units match, no global lr needed.

    ``r <- rho r + (1-rho) u^2``; ``d = sqrt(a + eps) / sqrt(r + eps) * u``;
    ``a <- rho a + (1-rho) d^2``.
    """

    hyper = {"rho": UNIT, "eps": POSITIVE}

    def plain(self, updates, params, states, group):
        rho, eps = group["rho"], group["eps"]
        out = []
        for u, r, a in zip(updates, _buffers(states, params, "square_avg"), _buffers(states, params, "acc_delta")):
            r.mul_(rho).addcmul_(u, u, value=1 - rho)
            delta = a.add(eps).sqrt_().div_(r.add(eps).sqrt_()).mul_(u)
            a.mul_(rho).addcmul_(delta, delta, value=1 - rho)
            out.append(delta)
        return out

    def foreach(self, updates, params, states, group):
        rho, eps = group["rho"], group["eps"]
        sq, acc = _buffers(states, params, "square_avg"), _buffers(states, params, "acc_delta")
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
    """

    hyper = {"betas": BETAS, "eps": NON_NEGATIVE}
    needs_step = True

    def __init__(self, bias_correction: bool = True) -> None:
        self.bias_correction = bias_correction

    def _corrections(self, states, group) -> tuple[list[float], list[float]]:
        b1, b2 = group["betas"]
        if not self.bias_correction:
            return [1.0] * len(states), [1.0] * len(states)
        steps = _steps(states)
        return [1 - b1 ** t for t in steps], [math.sqrt(1 - b2 ** t) for t in steps]

    def plain(self, updates, params, states, group):
        b1, b2 = group["betas"]
        c1, c2 = self._corrections(states, group)
        out = []
        for u, m, v, k1, k2 in zip(updates, _buffers(states, params, "exp_avg"),
                                   _buffers(states, params, "exp_avg_sq"), c1, c2):
            m.lerp_(u, 1 - b1)                               # momentum
            v.mul_(b2).addcmul_(u, u, value=1 - b2)          # RMSProp
            out.append((m / k1) / (v.sqrt() / k2).add_(group["eps"]))
        return out

    def foreach(self, updates, params, states, group):
        b1, b2 = group["betas"]
        c1, c2 = self._corrections(states, group)
        m, v = _buffers(states, params, "exp_avg"), _buffers(states, params, "exp_avg_sq")
        torch._foreach_lerp_(m, updates, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, updates, updates, value=1 - b2)
        # m_hat / (sqrt(v_hat) + eps) = m / (sqrt(v) * c1/c2 + eps * c1)
        den = torch._foreach_sqrt(v)
        torch._foreach_mul_(den, [k1 / k2 for k1, k2 in zip(c1, c2)])
        torch._foreach_add_(den, [group["eps"] * k1 for k1 in c1])
        return Ratio(m, den)

    def scale(self, states, group):
        c1, c2 = self._corrections(states, group)
        return [1.0 / ((s["exp_avg_sq"].sqrt() / k2 + group["eps"]) * k1)
                for s, k1, k2 in zip(states, c1, c2) if "exp_avg_sq" in s]

    def __repr__(self) -> str:
        return f"ScaleByAdam(bias_correction={self.bias_correction})"


def scale_by_adam(bias_correction: bool = True) -> ScaleByAdam:
    return ScaleByAdam(bias_correction)


# ------------------------------------------------------------------ clipping and guards

class ClipByValue(Transform):
    """Clamp every coordinate of the update to ``[-c, c]``, ``c = group[key]`` (None: off)."""

    def __init__(self, key: str = "clip_value") -> None:
        self.key = key

    def plain(self, updates, params, states, group):
        c = group.get(self.key)
        return updates if c is None else [u.clamp(-c, c) for u in updates]

    def foreach(self, updates, params, states, group):
        c = group.get(self.key)
        if c is None:
            return updates
        out = torch._foreach_clamp_min(updates, -c)
        torch._foreach_clamp_max_(out, c)
        return out


def clip_by_value(key: str = "clip_value") -> ClipByValue:
    return ClipByValue(key)


class ClipByGlobalNorm(Transform):
    """Rescale the group's updates so that their joint L2 norm is at most ``group[key]`` (None: off)."""

    def __init__(self, key: str = "max_norm") -> None:
        self.key = key

    def _factor(self, norms: Tensors, max_norm: float) -> Tensor:
        total = torch.linalg.vector_norm(torch.stack(norms))
        return (max_norm / (total + 1e-6)).clamp(max=1.0)

    def plain(self, updates, params, states, group):
        c = group.get(self.key)
        if c is None:
            return updates
        factor = self._factor([torch.linalg.vector_norm(u) for u in updates], c)
        return [u * factor for u in updates]

    def foreach(self, updates, params, states, group):
        c = group.get(self.key)
        if c is None:
            return updates
        return torch._foreach_mul(updates, self._factor(list(torch._foreach_norm(updates)), c))


def clip_by_global_norm(key: str = "max_norm") -> ClipByGlobalNorm:
    return ClipByGlobalNorm(key)


class SkipNonFinite(Transform):
    """Skip (or stop) the step when an update holds NaN or Inf.

    Put it first in a chain: then no buffer of a later transform has seen the
    bad gradient. ``mode="skip"`` leaves parameters and state as they were and
    counts the skip in ``optimizer.skipped_steps``; ``mode="stop"`` raises
    :class:`NonFiniteUpdateError`.
    """

    def __init__(self, mode: str = "skip") -> None:
        if mode not in ("skip", "stop"):
            raise ValueError(f"mode must be 'skip' or 'stop', got {mode!r}")
        self.mode = mode

    def plain(self, updates, params, states, group):
        for i, u in enumerate(updates):
            if not bool(torch.isfinite(u).all()):
                if self.mode == "stop":
                    raise NonFiniteUpdateError(f"non-finite update for parameter {i} of its group "
                                               f"(shape {tuple(u.shape)})")
                raise SkipStep
        return updates

    def foreach(self, updates, params, states, group):
        norms = torch._foreach_norm(updates)
        if bool(torch.isfinite(torch.stack(norms)).all()):
            return updates
        return self.plain(updates, params, states, group)

    def __repr__(self) -> str:
        return f"SkipNonFinite({self.mode!r})"


def skip_non_finite(mode: str = "skip") -> SkipNonFinite:
    return SkipNonFinite(mode)
