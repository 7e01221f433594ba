"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

Train for a few steps while the learning rate grows geometrically from very
small to very large, and record the loss: it first stays flat (the rate is
too small to move the weights), then falls, then blows up (the rate is too
high). A good rate lies on the falling stretch, below the minimum. The model
and the optimizer are put back as they were afterwards.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LRRangeTest", "lr_range_test"]


@dataclass
class LRRangeTest:
    """What the test saw: the rate of every step and the smoothed loss after it."""

    lrs: list[float]
    losses: list[float]
    diverged: bool
    smoothing: float = 0.9

    @property
    def min_loss_lr(self) -> float:
        """The rate at which the smoothed loss was lowest."""
        return self.lrs[self.losses.index(min(self.losses))]

    @property
    def turning_lr(self) -> float:
        """The rate at which the loss itself was lowest: the smoothed minimum moved back by the moving
        average's delay (``smoothing / (1 - smoothing)`` steps; 9 at 0.9).

        The smoothed loss bottoms out that many steps after the loss did, at a rate
        several times higher while the rate grows geometrically. It is the fastest
        rate the test saw still working, and an aggressive choice: where the loss
        converged early in the test (an easy convex problem) the instability shows
        late and this rate can lie past the stable edge. Use it where a run is
        watched (the doctor's repairs), :meth:`suggestion` otherwise.
        """
        delay = round(self.smoothing / (1 - self.smoothing))
        return self.lrs[max(0, self.losses.index(min(self.losses)) - delay)]

    def suggestion(self) -> float:
        """Smith's rule: a tenth of the rate at the smoothed minimum (an order of magnitude below where
        training turned unstable)."""
        return self.min_loss_lr / 10

    def plot(self, ax=None):
        """Loss against learning rate (log axis), the suggestion and the turning rate marked."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3.5))[1]
        ax.plot(self.lrs, self.losses)
        ax.axvline(self.suggestion(), color="tab:green", ls="--", label=f"suggestion {self.suggestion():.3g}")
        ax.axvline(self.turning_lr, color="tab:orange", ls=":", label=f"turning rate {self.turning_lr:.3g}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title="LR range test")
        ax.legend()
        return ax


def lr_range_test(model: nn.Module, optimizer: torch.optim.Optimizer,
                  loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, start_lr: float = 1e-6,
                  end_lr: float = 10.0, steps: int = 100, smoothing: float = 0.9,
                  diverge: float = 4.0, max_norm: float | None = None,
                  forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                  ) -> LRRangeTest:
    """Run the range test; ``model`` and ``optimizer`` are restored afterwards, however it ends.

    Args:
        model, optimizer: as in training (any ``torch.optim.Optimizer``). With
            several parameter groups, every group's rate is scaled by the same
            factor, keeping their ratios.
        loss_fn: ``loss_fn(model(x), y)``.
        batches: ``(x, y)`` pairs, cycled if there are fewer than ``steps``.
        start_lr, end_lr: the first group's rate at the first and the last step.
        steps: how many steps the rate takes to go from ``start_lr`` to ``end_lr``.
        smoothing: factor of the loss's exponential moving average (bias-corrected).
        diverge: stop once the smoothed loss exceeds this multiple of its minimum
            (or is not finite).
        max_norm: clip the gradients' global norm to this, as the training does.
        forward: ``forward(model, x, y)`` for the model's output when it is not
            ``model(x)`` (teacher forcing).

    Raises:
        ValueError: a range that does not grow, fewer than 2 steps, or no batches.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    model_state = copy.deepcopy(model.state_dict())
    optim_state = copy.deepcopy(optimizer.state_dict())
    base = [g["lr"] / optimizer.param_groups[0]["lr"] if optimizer.param_groups[0]["lr"] else 1.0
            for g in optimizer.param_groups]
    ratio = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best, diverged = 0.0, math.inf, False
    was_training = model.training
    model.train()
    try:
        source = itertools.cycle(batches)
        for i in range(steps):
            try:
                x, y = next(source)
            except StopIteration:
                raise ValueError("lr_range_test got no batches") from None
            lr = start_lr * ratio ** i
            for group, scale in zip(optimizer.param_groups, base):
                group["lr"] = lr * scale
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x) if forward is None else forward(model, x, y), y)
            loss.backward()
            if max_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            value = loss.item()
            average = smoothing * average + (1 - smoothing) * value
            smoothed = average / (1 - smoothing ** (i + 1))
            if not math.isfinite(smoothed) or smoothed > diverge * best:
                diverged = True
                break
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
        optimizer.zero_grad(set_to_none=True)
        model.train(was_training)
    if not lrs:
        raise ValueError(f"the loss was not finite at the first step (lr {start_lr:g}); the range test "
                         "needs a model that trains at its smallest rate")
    return LRRangeTest(lrs, losses, diverged, smoothing)
