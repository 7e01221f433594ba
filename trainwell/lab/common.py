"""What several experiments share: a quiet run of trainwell, and a look inside a network's layers."""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from trainwell.config import Config, resolve_config
from trainwell.data import Data
from trainwell.doctor.probes import activation_name
from trainwell.loop import Callback
from trainwell.nn.activations import ACTIVATIONS
from trainwell.runs import Run, train

__all__ = ["LayerProbe", "base_config", "geometric_mean", "mean", "quiet_train", "ratio"]


def base_config(**sections: dict[str, Any]) -> dict[str, Any]:
    """A config dict for a lab run: no progress bar, no checkpoints, no doctor, no early stopping (unless a
    section says so; each is pinned, so that a run is the set-up its experiment states whatever the defaults)."""
    cfg: dict[str, Any] = {"train": {"progress": False}, "checkpoint": {"every_epochs": None, "best": False},
                           "doctor": {"enabled": False}, "early_stopping": {"enabled": False},
                           "model": {"dropout": 0.0}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def quiet_train(config: dict[str, Any] | Config, *, callbacks: Sequence[Callback] = (), data: Data | None = None
                ) -> Run:
    """``trainwell.train`` into a temporary directory (removed afterwards); the Run keeps model and history."""
    cfg = resolve_config(config)
    with tempfile.TemporaryDirectory(prefix="trainwell-lab-") as tmp:
        return train(cfg, out=f"{tmp}/run", callbacks=callbacks, progress=False, data=data)


class LayerProbe:
    """Forward hooks on every activation module of ``model``, always removed (use as a context manager).

    After a forward pass (and a backward pass for gradients), ``layers()`` gives per hidden layer,
    in order: the output's mean and std, the share of saturated units, the share of units dead on every row,
    and the std of the state gradient (the loss's gradient with respect to the layer's output).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.outputs: list[tuple[str, str, torch.Tensor]] = []
        self._handles: list[Any] = []

    def __enter__(self) -> LayerProbe:
        for name, module in self.model.named_modules():
            kind = activation_name(module)
            if kind is not None:
                self._handles.append(module.register_forward_hook(self._hook(name, kind)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, name: str, kind: str):
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
            if output.requires_grad:
                output.retain_grad()
            self.outputs.append((name, kind, output))
        return hook

    def clear(self) -> None:
        self.outputs = []

    def layers(self) -> list[dict[str, Any]]:
        out = []
        for name, kind, y in self.outputs:
            meta = ACTIVATIONS.entry(kind).meta
            units = y.detach().reshape(y.shape[0], -1)  # (rows, units)
            row: dict[str, Any] = {"layer": name, "mean": units.mean().item(), "std": units.std().item()}
            row["saturated"] = meta["saturated"](units).float().mean().item() if meta["saturated"] else 0.0
            row["dead"] = meta["dead"](units).all(dim=0).float().mean().item() if meta["dead"] else 0.0
            row["inactive"] = (units <= 0).all(dim=0).float().mean().item()  # no positive output on any row
            row["grad_std"] = y.grad.std().item() if y.grad is not None else None
            out.append(row)
        return out


@contextmanager
def probed(model: nn.Module) -> Iterator[LayerProbe]:
    with LayerProbe(model) as probe:
        yield probe


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def geometric_mean(values: Sequence[float]) -> float:
    vals = [v for v in values if v > 0]
    return math.exp(statistics.fmean(math.log(v) for v in vals)) if vals else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")
