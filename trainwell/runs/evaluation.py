"""A finished run's model: loaded back, measured on its splits or on new data.

Loading never unpickles anything: the structure comes from ``config.yaml``,
the tensors from ``model.safetensors`` (:mod:`trainwell.io`). An ensemble
directory (``ensemble.json`` naming member runs) loads like one model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwell.config import Config
from trainwell.data import Data, DataSpec, Split
from trainwell.errors import TrainwellError
from trainwell.io import MODEL_FILE, read_model_file
from trainwell.losses import make_loss
from trainwell.loop import evaluate
from trainwell.metrics import class_metrics
from trainwell.models import Model, build_model
from trainwell.nn.ensemble import Ensemble
from trainwell.runs.directory import read_run
from trainwell.runs.prepare import configured_data, dataset_names

__all__ = ["build", "evaluate_run", "load_arrays", "load_model", "make_run_loss", "split_metrics"]


def build(cfg: Config, spec: DataSpec, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> Model:
    """The model of ``cfg`` for data described by ``spec`` (``mean``/``std``: the standardising layer's)."""
    return build_model(cfg.model, spec.input_shape, spec.n_classes, spec.kind, mean, std,
                       input_vocab=spec.input_vocab, target_length=spec.target_length)


def make_run_loss(cfg: Config, spec: DataSpec):
    """The loss of ``cfg`` (class-weighted losses use the training split's class counts)."""
    return make_loss(cfg.loss, spec.n_classes, None if spec.class_counts is None else list(spec.class_counts),
                     **cfg.loss_options)


def split_metrics(model: nn.Module, data: Data, device: torch.device, loss_fn) -> dict[str, Any]:
    """Loss and accuracy on train, validation and test; per-class metrics on validation and test."""
    out: dict[str, Any] = {}
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        split = split.to(device)
        result = evaluate(model, split, loss_fn, return_predictions=name != "train")
        if name != "train":
            result.update(class_metrics(result.pop("predictions"), split.y, data.n_classes))
        out[name] = result
    return out


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model of a run directory and load its parameters (in eval mode).

    Raises:
        TrainwellError: the directory, config or weights file is missing, corrupt
            or from another model; the message says which.
    """
    return _load(run_dir)[0].to(device)


def _load(run_dir: str | Path) -> tuple[nn.Module, Config, DataSpec]:
    ensemble = Path(run_dir) / "ensemble.json"
    if ensemble.is_file():  # an ensemble directory loads like a single model
        try:
            spec = json.loads(ensemble.read_text())
            loaded = [_load(Path(run_dir) / m["dir"]) for m in spec["members"]]
        except (ValueError, KeyError, TypeError) as err:
            raise TrainwellError(f"{ensemble} is not a readable ensemble ({err})") from None
        return Ensemble([m for m, _, _ in loaded], spec.get("combine", "average"), spec.get("weights")).eval(), \
            loaded[0][1], loaded[0][2]
    run_dir, cfg = read_run(run_dir)
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise TrainwellError(f"{run_dir} holds no saved model ({MODEL_FILE} missing; did training finish?)")
    header, state = read_model_file(path)
    spec = DataSpec.from_dict(json.loads(header["data"]))
    standardized = "standardize.mean" in state
    shape = spec.input_shape
    with torch.random.fork_rng(devices=[]):
        model = build(cfg, spec, *((torch.zeros(shape), torch.ones(shape)) if standardized else (None, None)))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise TrainwellError(f"{path} does not match the model in config.yaml: {first}") from None
    return model.eval(), cfg, spec


def load_arrays(path: Path) -> Split:
    """Rows of an ``.npz`` (arrays ``x`` and ``y``) or a ``.csv`` (label last), checked.

    Raises:
        TrainwellError: missing or unreadable file, non-finite values, labels that are not classes.
    """
    if not path.is_file():
        raise TrainwellError(f"data file not found: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if "x" not in f or "y" not in f:
                    raise TrainwellError(f"{path} must hold arrays 'x' and 'y', has {sorted(f.files)}")
                x, y = f["x"], f["y"]
        elif path.suffix == ".csv":
            table = np.loadtxt(path, delimiter=",", ndmin=2)
            x, y = table[:, :-1], table[:, -1]
        else:
            raise TrainwellError(f"--data must be a data set name, an .npz (x, y) or a .csv (label last), got {path}")
    except (OSError, ValueError) as err:
        if isinstance(err, TrainwellError):
            raise
        raise TrainwellError(f"cannot read {path}: {err}") from None
    if not np.all(np.isfinite(x)):
        rows = np.unique(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[:, 0])
        raise TrainwellError(f"{path} has non-finite values in rows {rows[:10].tolist()}")
    if np.any(y != np.round(y)) or np.any(y < 0):
        raise TrainwellError(f"{path}: labels must be non-negative integers")
    return Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long())


def evaluate_run(run_dir: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a saved model on its test split, or on ``data``.

    Args:
        run_dir: a run directory written by :func:`~trainwell.train`.
        data: None (the run's own test split), an embedded data set name
            (its test split, built with the run's data settings), or a file:
            ``.npz`` with arrays ``x`` and ``y``, or ``.csv`` with the label last.

    Returns:
        ``{"loss", "accuracy", "per_class_recall", "rows"}``.
    """
    model, cfg, spec = _load(run_dir)
    n_classes, expected = spec.n_classes, spec.input_shape
    if data is None or str(data) in dataset_names():
        d = cfg.data if data is None else cfg.data.model_copy(update={"name": str(data)})
        split = configured_data(d).test
    else:
        split = load_arrays(Path(data))
    if tuple(split.x.shape[1:]) != expected:
        raise TrainwellError(f"data rows have shape {tuple(split.x.shape[1:])}, the model expects {expected}")
    if len(split.y) and int(split.y.max()) >= n_classes:
        raise TrainwellError(f"labels go up to {int(split.y.max())}, the model has {n_classes} classes")
    loss_fn = make_run_loss(cfg, spec)
    try:
        result = evaluate(model, split, loss_fn, return_predictions=True)
    except RuntimeError as err:
        raise TrainwellError(f"data do not fit the model: {str(err).splitlines()[0]}") from None
    result.update(class_metrics(result.pop("predictions"), split.y, n_classes))
    result["rows"] = len(split)
    return result
