"""The training loop of seed 004, written out once, top to bottom.

    0. hyper-parameters are set        (the caller: a Config)
    1. parameters are initialised      (the caller: build_model)
    2. for each epoch:
         shuffle the training data
         for each mini-batch:
           load it, compute the loss and its gradient, update the parameters
    3. save the model                  (the caller: save_model)

Batch gradient descent, SGD and mini-batch SGD are the same loop with batch
sizes of len(train), 1 and anything between.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainwell.data.datasets import Split
from trainwell.loop.callbacks import EVENTS, Callback, CancelBatch, CancelEpoch, CancelFit
from trainwell.losses import summed_over_rows

if TYPE_CHECKING:
    from trainwell.loop.distributed import Shard

__all__ = ["Trainer", "evaluate"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, loss_fn: LossFn, batch_size: int = 4096,
             return_predictions: bool = False,
             reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """Mean loss and accuracy of ``model`` on ``split`` in eval mode.

    For sequence targets ``(rows, steps)`` the accuracy is per token and
    ``sequence_accuracy`` the share of rows with every token right; the model
    decodes on its own (no teacher forcing).

    Args:
        reduce: sums the counts (loss sum, rows, right answers) over the processes of a
            data-parallel run, each of which passes its own rows as ``split``
            (:meth:`trainwell.loop.distributed.Shard.evaluate`).

    Returns:
        ``{"loss", "accuracy"}`` (and ``"sequence_accuracy"``) and, with
        ``return_predictions``, ``"predictions"`` (an int64 tensor of predicted classes).
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=split.x.device)
    preds = []
    for start in range(0, len(split), batch_size):
        x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
        out = model(x)
        loss_sum += summed_over_rows(loss_fn, loss_fn(out, y), len(y))
        preds.append(out.argmax(1))
    model.train(was_training)
    pred = torch.cat(preds) if preds else split.y.new_empty(split.y.shape)
    right = pred == split.y
    every_token = right.all(dim=1).sum() if split.y.dim() > 1 else right.new_zeros((), dtype=torch.long)
    counts = torch.cat([torch.stack([loss_sum, right.sum().double(), every_token.double()]),
                        torch.tensor([len(split), right.numel()], dtype=torch.float64, device=loss_sum.device)])
    if reduce is not None:
        counts = reduce(counts)
    loss_total, right_total, every_total, rows, targets = counts.tolist()  # one read back
    n = max(rows, 1)
    result: dict[str, Any] = {"loss": loss_total / n, "accuracy": right_total / max(targets, 1)}
    if split.y.dim() > 1:
        result["sequence_accuracy"] = every_total / n
    if return_predictions:
        result["predictions"] = pred
    return result


class Trainer:
    """Trains ``model`` on in-memory tensors with events around every stage.

    Args:
        model: the network, producing logits ``(batch, classes)``.
        optimizer: any ``torch.optim.Optimizer``; one that needs a closure
            (L-BFGS) gets one.
        loss_fn: ``f(logits, y) -> scalar``.
        train: the training split.
        val: the validation split, evaluated after every epoch (optional).
        epochs: the number of passes over ``train``.
        batch_size: rows per update (>= len(train) is full-batch gradient descent).
        callbacks: see :mod:`trainwell.loop.callbacks`.
        generator: the random source of the shuffles (seeded for reproducibility).
        forward: ``f(model, x, y) -> output`` for training steps (default
            ``model(x)``); a sequence model reads the targets (teacher forcing).
        row_weights: draw each epoch's rows with these probabilities (with
            replacement) instead of shuffling them, e.g.
            :func:`~trainwell.data.samplers.balanced_row_weights`.
        shard: this process's part of a data-parallel run
            (:class:`~trainwell.loop.distributed.Shard`): every process draws the
            same global batches and trains on its part of each; the processes stop
            together and evaluate each validation row once.

    Attributes set during ``fit`` for callbacks: ``epoch`` (completed epochs),
    ``step`` (updates so far), ``batch`` (index within the epoch), ``xb``, ``yb``,
    ``output``, ``loss``, ``logs`` (the epoch's record), ``history``, ``should_stop``.

    Example:
        >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1),
        ...                   torch.nn.functional.cross_entropy, train, val, epochs=5)
        >>> history = trainer.fit()
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn, train: Split,
                 val: Split | None = None, *, epochs: int, batch_size: int = 128,
                 callbacks: Sequence[Callback] = (), generator: torch.Generator | None = None,
                 forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 row_weights: torch.Tensor | None = None, shard: Shard | None = None) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(train) == 0:
            raise ValueError("the training split is empty")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.train_split, self.val_split = train, val
        self.epochs, self.batch_size = epochs, min(batch_size, len(train))
        self.callbacks = list(callbacks)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.forward = forward if forward is not None else (lambda model, x, y: model(x))
        if row_weights is not None and (row_weights.shape != (len(train),) or not bool((row_weights >= 0).all())):
            raise ValueError(f"row_weights must be {len(train)} non-negative numbers, one per training row")
        self.row_weights = None if row_weights is None else row_weights.double().cpu()
        self.needs_closure = bool(getattr(optimizer, "needs_closure", isinstance(optimizer, torch.optim.LBFGS)))
        self.create_graph = bool(getattr(optimizer, "create_graph", False))  # Newton differentiates twice
        if shard is not None and self.needs_closure:
            raise ValueError("an optimizer that re-evaluates the loss (a closure) cannot train data-parallel: "
                             "each process would search the step on its own rows")
        self.shard = shard
        self.epoch = 0
        self.step = 0
        self.batch = 0
        self.history: list[dict[str, Any]] = []
        self.logs: dict[str, Any] = {}
        self.should_stop = False
        self.progress: dict[str, Any] | None = None  # the epoch in progress (order, position, running sums)
        self._epoch_started: float | None = None
        self.xb = self.yb = self.output = self.loss = None
        # Bound methods of the callbacks that implement each event: the loop
        # pays nothing for events nobody listens to.
        self._handlers = {e: [getattr(cb, f"on_{e}") for cb in self.callbacks
                              if getattr(type(cb), f"on_{e}") is not getattr(Callback, f"on_{e}")]
                          for e in EVENTS}

    def _fire(self, event: str) -> None:
        for handler in self._handlers[event]:
            handler(self)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_split) / self.batch_size)

    # ------------------------------------------------------------------ the loop

    def fit(self) -> list[dict[str, Any]]:
        """Run the remaining epochs; return the history (one dict per epoch)."""
        self.should_stop = False
        self._fire("fit_start")
        try:
            while self.epoch < self.epochs and not self.should_stop:
                self._run_epoch()
        except CancelFit:
            pass
        finally:  # fit_end also runs when an error or an interruption ends the fit (cleanup)
            self._fire("fit_end")
        return self.history

    def _start_epoch(self) -> dict[str, Any]:
        """Shuffle the training data and open the epoch's running sums."""
        x, n = self.train_split.x, len(self.train_split)
        self._fire("epoch_start")
        full_batch = self.batch_size >= n  # batch gradient descent: order does not matter, skip the copy
        # the order is drawn on the CPU (one generator whatever the device) and sent without
        # waiting: the device reads it in stream order, the host never blocks on the copy
        if self.row_weights is not None:  # a weighted draw with replacement (class-balanced epochs)
            order = torch.multinomial(self.row_weights, n, replacement=True, generator=self.generator)
        else:
            order = None if full_batch else torch.randperm(n, generator=self.generator)
        order = None if order is None else order.to(x.device, non_blocking=True)
        return {"order": order,
                "next_batch": 0, "elapsed": 0.0,
                "loss_sum": torch.zeros((), dtype=torch.float64, device=x.device),
                "correct": torch.zeros((), dtype=torch.long, device=x.device), "seen": 0, "targets": 0}

    def _run_epoch(self) -> None:
        start = self._epoch_started = time.perf_counter()
        model, x, y, bs = self.model, self.train_split.x, self.train_split.y, self.batch_size
        model.train()
        if self.progress is None:  # else: resuming inside an epoch, with its saved order and sums
            self.progress = self._start_epoch()
        p = self.progress
        order, loss_sum, correct = p["order"], p["loss_sum"], p["correct"]
        batch_start, batch_end = self._handlers["batch_start"], self._handlers["batch_end"]
        try:
            for self.batch in range(p["next_batch"], self.steps_per_epoch):
                if order is None:
                    self.xb, self.yb = x, y
                else:
                    idx = order[self.batch * bs:(self.batch + 1) * bs]
                    self.xb, self.yb = x[idx], y[idx]  # load the mini-batch
                p["next_batch"] = self.batch + 1
                try:
                    for handler in batch_start:
                        handler(self)
                    if self.shard is not None:  # the global batch (augmented whole) -> this process's rows
                        self.xb, self.yb = self.shard.part(self.xb, self.yb, self.step)
                    self._update()
                except CancelBatch:
                    continue
                # running sums stay on the device: read back once, at the end of the epoch
                if self.shard is None:
                    rows, targets = len(self.yb), self.yb.numel()  # rows, or tokens of sequence targets
                    loss_sum += summed_over_rows(self.loss_fn, self.loss, rows)
                    correct += (self.output.detach().argmax(1) == self.yb).sum()
                else:  # the whole global batch's, summed over the processes as they agreed to go on
                    rows, targets, batch_loss, batch_correct = self.shard.batch_sums
                    loss_sum += batch_loss
                    correct += batch_correct
                p["seen"] += rows
                p["targets"] += targets
                self.step += 1
                for handler in batch_end:
                    handler(self)
        except CancelEpoch:
            pass
        self.progress = None
        self.epoch += 1
        seen = max(p["seen"], 1)
        logs: dict[str, Any] = {"epoch": self.epoch, "step": self.step,
                                "train_loss": loss_sum.item() / seen,
                                "train_accuracy": correct.item() / max(p["targets"], 1),
                                "lr": self.optimizer.param_groups[0]["lr"]}
        if self.val_split is not None and len(self.val_split):
            val = (evaluate if self.shard is None else self.shard.evaluate)(model, self.val_split, self.loss_fn)
            logs.update({f"val_{key}": value for key, value in val.items()})
        logs["seconds"] = p["elapsed"] + time.perf_counter() - start
        self.logs = logs
        self.history.append(logs)
        self._fire_together("epoch_end")

    def _fire_together(self, event: str) -> None:
        """Fire ``event``; in a data-parallel run a CancelFit raised (or ``should_stop`` set) in any process
        ends the fit in every process, which agree on it before going on (:meth:`Shard.agree`)."""
        if self.shard is None:
            self._fire(event)
            return
        cancelled = False
        try:
            self._fire(event)
        except CancelFit:
            cancelled = True
        if self.shard.agree(self, cancelled, step=event == "after_backward"):
            raise CancelFit

    def _update(self) -> None:
        """Forward, loss, backward, update: one step of gradient descent."""
        optimizer = self.optimizer
        if self.needs_closure:
            self._update_with_closure()
            return
        self.output = self.forward(self.model, self.xb, self.yb)
        self.loss = self.loss_fn(self.output, self.yb)
        for handler in self._handlers["after_loss"]:
            handler(self)
        optimizer.zero_grad(set_to_none=True)
        self.loss.backward()
        self._fire_together("after_backward")  # the doctor stops a NaN here, before the update
        optimizer.step()
        for handler in self._handlers["after_step"]:
            handler(self)

    def _update_with_closure(self) -> None:
        """Optimizers such as L-BFGS re-evaluate the loss several times per step."""
        first = True

        def closure() -> torch.Tensor:
            nonlocal first
            self.optimizer.zero_grad(set_to_none=True)
            output = self.forward(self.model, self.xb, self.yb)
            loss = self.loss_fn(output, self.yb)
            if self.create_graph:
                with warnings.catch_warnings():  # the optimizer breaks the grad->graph cycle itself
                    warnings.simplefilter("ignore", UserWarning)
                    loss.backward(create_graph=True)
            else:
                loss.backward()
            if first:  # the events see the loss at the current parameters, once per step
                first = False
                self.output, self.loss = output, loss
                self._fire("after_loss")
                self._fire("after_backward")
            return loss

        self.optimizer.step(closure)
        self._fire("after_step")

    # ------------------------------------------------------------------ state

    def state_dict(self, without: tuple[type, ...] = ()) -> dict[str, Any]:
        """The loop's own state and the callbacks' (except those of the types ``without``).

        It holds the position (epoch, step and, inside an epoch, the epoch's
        shuffled order, the next batch and the running sums), the history
        and the shuffle generator: enough to continue exactly where it stopped.
        """
        p = self.progress
        progress = None if p is None else {
            "order": p["order"], "next_batch": p["next_batch"], "seen": p["seen"], "targets": p["targets"],
            "loss_sum": p["loss_sum"].item(), "correct": int(p["correct"].item()),
            "elapsed": p["elapsed"] + (time.perf_counter() - self._epoch_started if self._epoch_started else 0.0)}
        states = {key: cb.state_dict() for key, cb in self._callback_keys() if not isinstance(cb, without)}
        return {"epoch": self.epoch, "step": self.step, "history": list(self.history),
                "generator": self.generator.get_state(), "progress": progress,
                "callbacks": {key: state for key, state in states.items() if state}}

    def _callback_keys(self) -> list[tuple[str, Callback]]:
        """Callbacks named by class (``Name``, ``Name#2``, ...), so states match up on resume."""
        seen: dict[str, int] = {}
        out = []
        for cb in self.callbacks:
            name = type(cb).__qualname__
            seen[name] = seen.get(name, 0) + 1
            out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", cb))
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step = state["epoch"], state["step"]
        self.history = list(state["history"])
        self.generator.set_state(state["generator"])
        p = state.get("progress")
        if p is not None:
            device = self.train_split.x.device
            order = p["order"]
            self.progress = {"order": None if order is None else order.to(device), "next_batch": p["next_batch"],
                             "seen": p["seen"], "targets": p.get("targets", p["seen"]), "elapsed": p["elapsed"],
                             "loss_sum": torch.tensor(p["loss_sum"], dtype=torch.float64, device=device),
                             "correct": torch.tensor(p["correct"], dtype=torch.long, device=device)}
        else:
            self.progress = None
        saved = dict(state["callbacks"])
        for key, cb in self._callback_keys():
            if key in saved:
                cb.load_state_dict(saved.pop(key))
        if saved:
            raise ValueError(f"the saved state has state for callbacks this trainer does not have: "
                             f"{', '.join(saved)}")
