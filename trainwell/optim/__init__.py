"""Optimisation (seeds 001-003, section F): update rules chained from small transforms.

``trainwell.optim.adam(params, lr=...)`` and its siblings are
``torch.optim.Optimizer`` objects built as one chain each (see
:mod:`trainwell.optim.named`); :func:`chain` builds your own from
:mod:`trainwell.optim.transforms` (momentum, adaptive scaling),
:mod:`trainwell.optim.penalties` and :mod:`trainwell.optim.clipping` on the
protocol of :mod:`trainwell.optim.base`. Newton's method is in
:mod:`trainwell.optim.newton`; schedules (torch's own, built from a config) in :mod:`trainwell.loop.schedule`; the
learning-rate range test in :mod:`trainwell.optim.lr_find`.
"""

from trainwell.optim import base, clipping, penalties, transforms
from trainwell.optim.chain import Chain, chain
from trainwell.optim.lr_find import LRRangeTest, lr_range_test
from trainwell.optim.named import adadelta, adagrad, adam, adamw, momentum, nesterov, rmsprop, sgd
from trainwell.optim.newton import Newton, newton
from trainwell.optim.registry import OPTIMIZERS, build_optimizer

__all__ = ["OPTIMIZERS", "Chain", "LRRangeTest", "Newton", "adadelta", "adagrad", "adam", "adamw", "base",
           "build_optimizer", "chain", "clipping", "lr_range_test", "momentum", "nesterov", "newton", "penalties",
           "rmsprop", "sgd", "transforms"]
