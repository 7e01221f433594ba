"""Optimizers by name (seeds 001-003, section F of the spec)."""

from trainwell.optim.registry import OPTIMIZERS, make_optimizer

__all__ = ["OPTIMIZERS", "make_optimizer"]
