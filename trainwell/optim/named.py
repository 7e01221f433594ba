"""The optimizers of the notes, each one chain of transforms.

Each takes torch.optim's keyword names for the same hyper-parameters and
returns a :class:`~trainwell.optim.chain.Chain` (a ``torch.optim.Optimizer``):

=========== ==================================================================
sgd         add_l2 -> (lr)
momentum    add_l2 -> trace                          v = mu v + g
nesterov    add_l2 -> trace(nesterov)                g + mu v: look ahead
adagrad     add_l2 -> scale_by_sum_of_squares
adadelta    add_l2 -> scale_by_adadelta
rmsprop     add_l2 -> scale_by_rms -> trace           (momentum 0 by default)
adam        add_l2 -> scale_by_adam                  Momentum + RMSProp
adamw       scale_by_adam -> add_decayed_weights     decoupled decay
=========== ==================================================================
"""

from __future__ import annotations

from collections.abc import Iterable

from trainwell.optim.chain import Chain
from trainwell.optim.transforms import (add_decayed_weights, add_l2, scale_by_adadelta, scale_by_adam, scale_by_rms,
                                        scale_by_sum_of_squares, trace)

__all__ = ["adadelta", "adagrad", "adam", "adamw", "momentum", "nesterov", "rmsprop", "sgd"]


def sgd(params: Iterable, lr: float = 1e-2, weight_decay: float = 0.0, *, foreach: bool | None = None) -> Chain:
    """Stochastic gradient descent: ``p <- p - lr * (g + weight_decay * p)``."""
    return Chain(params, [add_l2()], dict(lr=lr, weight_decay=weight_decay), foreach=foreach)


def momentum(params: Iterable, lr: float = 1e-2, momentum: float = 0.9, dampening: float = 0.0,
             weight_decay: float = 0.0, *, foreach: bool | None = None) -> Chain:
    """SGD with momentum: ``v <- momentum * v + (1 - dampening) * g``; ``p <- p - lr * v``.

    Same trajectory as ``torch.optim.SGD(momentum=...)``.
    """
    return Chain(params, [add_l2(), trace(nesterov=False)],
                 dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay), foreach=foreach)


def nesterov(params: Iterable, lr: float = 1e-2, momentum: float = 0.9, weight_decay: float = 0.0, *,
             foreach: bool | None = None) -> Chain:
    """Nesterov momentum: the step uses ``g + momentum * v``, the gradient "looking ahead"."""
    return Chain(params, [add_l2(), trace(nesterov=True)],
                 dict(lr=lr, momentum=momentum, dampening=0.0, weight_decay=weight_decay), foreach=foreach)


def adagrad(params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
            initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, foreach: bool | None = None) -> Chain:
    """AdaGrad: ``s <- s + g^2``; ``p <- p - lr * g / (sqrt(s) + eps)``."""
    return Chain(params, [add_l2(), scale_by_sum_of_squares()],
                 dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                      initial_accumulator_value=initial_accumulator_value, eps=eps), foreach=foreach)


def adadelta(params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
             *, foreach: bool | None = None) -> Chain:
    """Adadelta: steps of size RMS(past steps) / RMS(gradients); ``lr`` = 1 needs no tuning."""
    return Chain(params, [add_l2(), scale_by_adadelta()], dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay),
                 foreach=foreach)


def rmsprop(params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
            momentum: float = 0.0, centered: bool = False, *, foreach: bool | None = None) -> Chain:
    """RMSProp: ``r <- alpha r + (1-alpha) g^2``; ``p <- p - lr * g / (sqrt(r) + eps)`` (optionally with momentum)."""
    return Chain(params, [add_l2(), scale_by_rms(), trace(nesterov=False)],
                 dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered),
                 foreach=foreach)


def adam(params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, bias_correction: bool = True, *, foreach: bool | None = None) -> Chain:
    """Adam = Momentum + RMSProp, bias-corrected by 1 - beta^t (see :class:`~trainwell.optim.transforms.ScaleByAdam`).

    ``weight_decay`` is an L2 penalty added to the gradient, as in ``torch.optim.Adam``.
    ``bias_correction=False`` shows what the uncorrected averages do (first step
    ``lr * (1-b1)/sqrt(1-b2)`` instead of ``lr``).
    """
    return Chain(params, [add_l2(), scale_by_adam(bias_correction)],
                 dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay), foreach=foreach)


def adamw(params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2, *, foreach: bool | None = None) -> Chain:
    """AdamW: Adam with decoupled weight decay ``p <- p - lr * (adam_update + weight_decay * p)``."""
    return Chain(params, [scale_by_adam(), add_decayed_weights()],
                 dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay), foreach=foreach)
