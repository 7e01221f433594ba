"""Named optimizers: a factory ``(params, OptimConfig) -> torch.optim.Optimizer``.

The config's keys use torch.optim's names (lr, momentum, betas, eps,
weight_decay); each optimizer takes the ones it understands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from trainwell.config import OptimConfig
from trainwell.registry import Registry

__all__ = ["OPTIMIZERS", "make_optimizer"]

Factory = Callable[[Iterable, OptimConfig], torch.optim.Optimizer]
OPTIMIZERS: Registry = Registry("optimizer")

OPTIMIZERS.add("sgd", lambda p, c: torch.optim.SGD(p, lr=c.lr, weight_decay=c.weight_decay),
               "plain stochastic gradient descent: w -= lr * g")
OPTIMIZERS.add("momentum", lambda p, c: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
               "SGD with momentum: v = mu*v + g; w -= lr * v")
OPTIMIZERS.add("nesterov", lambda p, c: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum, nesterov=True,
                                                         weight_decay=c.weight_decay),
               "Nesterov momentum: the gradient step looks ahead along the velocity")
OPTIMIZERS.add("adagrad", lambda p, c: torch.optim.Adagrad(p, lr=c.lr, eps=c.eps, weight_decay=c.weight_decay),
               "AdaGrad: per-parameter step lr / sqrt(sum of squared gradients)")
OPTIMIZERS.add("adadelta", lambda p, c: torch.optim.Adadelta(p, lr=c.lr, eps=c.eps, weight_decay=c.weight_decay),
               "Adadelta: RMS of past updates over RMS of gradients, no global lr needed (lr=1)")
OPTIMIZERS.add("rmsprop", lambda p, c: torch.optim.RMSprop(p, lr=c.lr, eps=c.eps, weight_decay=c.weight_decay),
               "RMSProp: per-parameter step lr / sqrt(moving average of squared gradients)")
OPTIMIZERS.add("adam", lambda p, c: torch.optim.Adam(p, lr=c.lr, betas=c.betas, eps=c.eps,
                                                      weight_decay=c.weight_decay),
               "Adam = Momentum + RMSProp, with bias correction by 1 - beta^t")
OPTIMIZERS.add("adamw", lambda p, c: torch.optim.AdamW(p, lr=c.lr, betas=c.betas, eps=c.eps,
                                                        weight_decay=c.weight_decay),
               "Adam with decoupled weight decay")


def make_optimizer(params: Iterable, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Build the optimizer named by ``cfg.name`` over ``params``."""
    return OPTIMIZERS.get(cfg.name)(params, cfg)
