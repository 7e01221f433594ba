"""The optimizers of the notes, each one chain of transforms.

Each takes torch.optim's keyword names and defaults for the same
hyper-parameters and returns a :class:`~trainwell.optim.chain.Chain` (a
``torch.optim.Optimizer``) whose ``param_groups`` and ``state`` use
torch.optim's keys, so a run can switch to the torch optimizer of the last
column mid-way and back:

=========== ============================================== ===================
sgd         add_l2 -> trace (momentum 0 by default)        torch.optim.SGD
momentum    sgd with momentum 0.9: v = mu v + g            torch.optim.SGD
nesterov    sgd with momentum 0.9, nesterov: g + mu v      torch.optim.SGD
adagrad     add_l2 -> scale_by_sum_of_squares              torch.optim.Adagrad
adadelta    add_l2 -> scale_by_adadelta                    torch.optim.Adadelta
rmsprop     add_l2 -> scale_by_rms -> trace                torch.optim.RMSprop
adam        add_l2 -> scale_by_adam: Momentum + RMSProp    torch.optim.Adam
adamw       scale_by_adam -> add_decayed_weights           torch.optim.AdamW
=========== ============================================== ===================

Every one takes ``maximize`` (ascend: start from ``-g``); adam and adamw take
``amsgrad``; sgd, momentum, nesterov and adagrad accept sparse gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

from trainwell.optim.chain import Chain
from trainwell.optim.penalties import add_decayed_weights, add_l2
from trainwell.optim.transforms import scale_by_adadelta, scale_by_adam, scale_by_rms, scale_by_sum_of_squares, trace

__all__ = ["adadelta", "adagrad", "adam", "adamw", "momentum", "nesterov", "rmsprop", "sgd"]


def sgd(params: Iterable, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
        weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
        foreach: bool | None = None) -> Chain:
    """Stochastic gradient descent, torch.optim.SGD's rule and defaults.

    Update: ``g <- g + weight_decay * p``; with ``momentum`` > 0,
    ``v <- momentum * v + (1 - dampening) * g`` (``v`` starts as the first ``g``)
    and ``g <- g + momentum * v`` if ``nesterov`` else ``v``; then ``p <- p - lr * g``.
    """
    return Chain(params, [add_l2(), trace()],
                 dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                      maximize=maximize), foreach=foreach)


def momentum(params: Iterable, lr: float = 1e-3, momentum: float = 0.9, dampening: float = 0.0,
             weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None) -> Chain:
    """SGD with momentum: ``v <- momentum * v + (1 - dampening) * g``; ``p <- p - lr * v``.

    ``sgd`` with momentum 0.9 by default (torch.optim.SGD's is 0): the same
    trajectory as ``torch.optim.SGD(momentum=...)``.
    """
    return sgd(params, lr, momentum, dampening, weight_decay, False, maximize=maximize, foreach=foreach)


def nesterov(params: Iterable, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, *,
             maximize: bool = False, foreach: bool | None = None) -> Chain:
    """Nesterov momentum: the step uses ``g + momentum * v``, the gradient "looking ahead".

    ``v <- momentum * v + g``; ``p <- p - lr * (g + momentum * v)``: torch.optim.SGD with
    ``nesterov=True`` (momentum 0.9 by default, no dampening).
    """
    return sgd(params, lr, momentum, 0.0, weight_decay, True, maximize=maximize, foreach=foreach)


def adagrad(params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
            initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False,
            foreach: bool | None = None) -> Chain:
    """AdaGrad: ``s <- s + g^2``; ``p <- p - lr / (1 + (t-1) lr_decay) * g / (sqrt(s) + eps)``."""
    return Chain(params, [add_l2(), scale_by_sum_of_squares()],
                 dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                      initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize),
                 foreach=foreach)


def adadelta(params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
             *, maximize: bool = False, foreach: bool | None = None) -> Chain:
    """Adadelta: steps of size RMS(past steps) / RMS(gradients); ``lr`` = 1 needs no tuning.

    ``r <- rho r + (1-rho) g^2``; ``d = sqrt(a + eps) / sqrt(r + eps) * g``;
    ``a <- rho a + (1-rho) d^2``; ``p <- p - lr * d``.
    """
    return Chain(params, [add_l2(), scale_by_adadelta()],
                 dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize), foreach=foreach)


def rmsprop(params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
            momentum: float = 0.0, centered: bool = False, *, maximize: bool = False,
            foreach: bool | None = None) -> Chain:
    """RMSProp: ``r <- alpha r + (1-alpha) g^2``; ``p <- p - lr * g / (sqrt(r) + eps)`` (optionally with momentum).

    ``centered`` divides by ``sqrt(r - mean(g)^2) + eps``; ``momentum`` > 0
    keeps ``v <- momentum v + g / (sqrt(r) + eps)`` and steps ``p <- p - lr v``.
    """
    return Chain(params, [add_l2(), scale_by_rms(), trace(nesterov=False)],
                 dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
                      maximize=maximize), foreach=foreach)


def adam(params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, amsgrad: bool = False, bias_correction: bool = True, *, maximize: bool = False,
         foreach: bool | None = None) -> Chain:
    """Adam = Momentum + RMSProp, bias-corrected by 1 - beta^t (see :class:`~trainwell.optim.transforms.ScaleByAdam`).

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``;
    ``p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)``. ``weight_decay``
    is an L2 penalty added to the gradient, as in ``torch.optim.Adam``;
    ``amsgrad`` divides by the running maximum of ``v``.
    ``bias_correction=False`` (not in torch) shows what the uncorrected averages
    do (first step ``lr * (1-b1)/sqrt(1-b2)`` instead of ``lr``).
    """
    return Chain(params, [add_l2(), scale_by_adam(bias_correction)],
                 dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                      maximize=maximize), foreach=foreach)


def adamw(params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
          foreach: bool | None = None) -> Chain:
    """AdamW: Adam with decoupled weight decay ``p <- p - lr * (adam_update + weight_decay * p)``."""
    return Chain(params, [scale_by_adam(), add_decayed_weights()],
                 dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                      maximize=maximize), foreach=foreach)
