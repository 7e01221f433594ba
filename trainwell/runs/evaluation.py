"""A finished run's model: loaded back, measured on its splits or on new data.

Loading never unpickles anything: the structure comes from ``config.yaml``,
the tensors from ``model.safetensors`` (:mod:`trainwell.io`). An ensemble
directory (``ensemble.json`` naming member runs) loads like one model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from trainwell.metrics import best_epoch, class_metrics
from trainwell.models import Model, build_model
from trainwell.nn.ensemble import Ensemble
from trainwell.runs.directory import read_run
from trainwell.runs.datafile import read_labelled, rows_for
from trainwell.runs.prepare import configured_data, dataset_names, unknown_data

__all__ = ["build", "evaluate_run", "load_arrays", "load_model", "make_run_loss", "predict", "run_summary",
           "split_metrics"]


def build(cfg: Config, spec: DataSpec, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> Model:
    """The model of ``cfg`` for data described by ``spec`` (``mean``/``std``: the standardising layer's)."""
    return build_model(cfg.model, spec.input_shape, spec.n_classes, spec.kind, mean, std,
                       input_vocab=spec.input_vocab, target_length=spec.target_length)


def make_run_loss(cfg: Config, spec: DataSpec):
    """The loss of ``cfg`` (class-weighted losses use the training split's class counts)."""
    return make_loss(cfg.loss, spec.n_classes, None if spec.class_counts is None else list(spec.class_counts),
                     **cfg.loss_options)


def split_metrics(model: nn.Module, data: Data, device: torch.device, loss_fn,
                  evaluator: Callable[..., dict[str, Any]] = evaluate) -> dict[str, Any]:
    """Loss and accuracy on train, validation and test; per-class metrics on validation and test.

    ``evaluator``: :func:`~trainwell.loop.evaluate`, or a data-parallel run's
    :meth:`~trainwell.loop.distributed.Shard.evaluate` (each rank its rows; every rank gets the metrics).
    """
    out: dict[str, Any] = {}
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        split = split.to(device)
        result = evaluator(model, split, loss_fn, return_predictions=name != "train")
        if name != "train":
            result.update(class_metrics(result.pop("predictions"), split.y, data.n_classes))
        out[name] = result
    return out


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model of a run directory and load its parameters (in eval mode).

    The result is a plain ``torch.nn.Module`` producing logits. A forward
    pre-hook checks each input's rows against the shape the model was trained
    on, so a wrongly shaped input is one line naming both shapes instead of
    torch's broadcasting or matmul error (:func:`predict` also reshapes flat
    rows and checks for non-finite values).

    Raises:
        TrainwellError: the directory, config or weights file is missing, corrupt
            or from another model; the message says which. Calling the model
            raises it for rows of another shape.
    """
    model, _, spec = _load(run_dir)
    if spec.kind != "sequence":  # a sequence model may read sequences of another length
        model.register_forward_pre_hook(_RowShapeCheck(spec.input_shape))
    return model.to(device)


class _RowShapeCheck:
    """A forward pre-hook: rows of another shape than ``shape`` are a one-line error (a class, not a closure,
    so that the model still pickles whole)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and (x.dim() < 1 or tuple(x.shape[1:]) != self.shape):
            got = tuple(x.shape[1:]) if x.dim() >= 1 else "a scalar"
            raise TrainwellError(f"input rows have shape {got}, the model expects {self.shape} "
                                 f"(a batch of shape (rows, {', '.join(map(str, self.shape))}))")


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


def load_arrays(path: str | Path, target: str | int | None = None) -> Split:
    """Rows of a data file: an ``.npz`` (arrays ``x`` and ``y``) or a ``.csv`` (header optional, label last
    or in the column ``target`` names), checked (:mod:`trainwell.runs.datafile`).

    Raises:
        TrainwellError: a missing, unreadable, empty or inconsistent file, non-finite values,
            labels that are not classes; one line.
    """
    x, y = read_labelled(path, target)
    return Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y))


def evaluate_run(run_dir: str | Path, data: str | Path | None = None,
                 target: str | int | None = None) -> dict[str, Any]:
    """Metrics of a saved model on its test split, or on ``data``.

    Args:
        run_dir: a run directory written by :func:`~trainwell.train`.
        data: None (the run's own test split: an embedded set rebuilt with the
            run's settings, or its data file, checked against the recorded
            sha256), an embedded data set name (its test split, built with the
            run's data settings), or a file: ``.npz`` with arrays ``x`` and ``y``,
            or ``.csv`` (header optional, label last or ``target``).
        target: the ``.csv`` label column (a header name or a number).

    Returns:
        ``{"loss", "accuracy", "per_class_recall", "rows"}``.

    Raises:
        TrainwellError: a damaged or missing model, data that are not embedded and
            no ``data`` given, a file that is unreadable or changed, or rows that do not fit.
    """
    model, cfg, spec = _load(run_dir)
    n_classes, expected = spec.n_classes, spec.input_shape
    if data is None or str(data) in dataset_names():
        d = cfg.data if data is None else cfg.data.model_copy(update={"name": str(data), "path": None})
        split = configured_data(d).test
    elif not Path(data).is_file():
        raise unknown_data(str(data))
    else:
        split = load_arrays(Path(data), target)
        split = Split(rows_for(split.x, expected), split.y)
    if tuple(split.x.shape[1:]) != expected:
        raise TrainwellError(f"data rows have shape {tuple(split.x.shape[1:])}, the model expects {expected}")
    if len(split.y) and int(split.y.max()) >= n_classes:
        raise TrainwellError(f"labels go up to {int(split.y.max())}, the model has {n_classes} classes")
    if spec.kind == "sequence":
        split = Split(split.x.long(), split.y)
    loss_fn = make_run_loss(cfg, spec)
    try:
        result = evaluate(model, split, loss_fn, return_predictions=True)
    except (RuntimeError, IndexError) as err:
        raise TrainwellError(f"data do not fit the model: {str(err).splitlines()[0]}") from None
    result.update(class_metrics(result.pop("predictions"), split.y, n_classes))
    result["rows"] = len(split)
    return result


def predict(run_dir: str | Path, x: np.ndarray | torch.Tensor, batch_size: int = 4096) -> dict[str, torch.Tensor]:
    """Predicted classes and class probabilities of a saved model for rows ``x``.

    :func:`load_model` returns a plain torch module, which takes whatever torch
    broadcasting allows; this is the checked way in: rows of the wrong shape or
    with non-finite values are refused in one line that names the expected
    shape. Flat rows (a CSV's) of an image model are reshaped to its shape.

    Args:
        run_dir: a run (or ensemble) directory.
        x: rows ``(rows, *input_shape)`` of raw features (the model standardises them itself).
        batch_size: rows per forward pass.

    Returns:
        ``{"predictions": int64 (rows,), "probabilities": float32 (rows, classes)}``
        (sequence tasks: ``(rows, steps)`` and ``(rows, classes, steps)``).

    Raises:
        TrainwellError: a damaged or missing model, rows of another shape, non-finite values.

    Example:
        >>> out = predict("runs/moons", np.array([[0.5, -0.2]]))  # doctest: +SKIP
        >>> out["predictions"], out["probabilities"].sum(1)       # doctest: +SKIP
    """
    model, _, spec = _load(run_dir)
    rows = rows_for(x, spec.input_shape)
    if rows.is_floating_point() and not bool(torch.isfinite(rows).all()):
        bad = (~torch.isfinite(rows.reshape(len(rows), -1))).any(1).nonzero().flatten()
        raise TrainwellError(f"rows {bad[:10].tolist()} have non-finite values")
    rows = rows.long() if spec.kind == "sequence" else rows.float()
    probabilities = []
    try:
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                probabilities.append(torch.softmax(model(rows[start:start + batch_size]), dim=1))
    except (RuntimeError, IndexError) as err:
        raise TrainwellError(f"rows do not fit the model: {str(err).splitlines()[0]}") from None
    p = torch.cat(probabilities) if probabilities else torch.empty(0, spec.n_classes)
    return {"predictions": p.argmax(1), "probabilities": p}


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """What a past run's files say, read without training or loading the model.

    Returns:
        ``{"dir", "data", "model", "status" ("finished" with metrics.json, else
        "unfinished"), "epochs", "planned_epochs", "best_epoch", "final" ({split:
        {"loss", "accuracy"}}: metrics.json's, or the last epoch's from
        history.jsonl), "findings" (the audit's and the doctor's), "repairs"}``.

    Raises:
        TrainwellError: not a run directory, or an unreadable config.
    """
    run_dir, cfg = read_run(run_dir)
    history = _json_lines(run_dir / "history.jsonl")
    metrics = _json_file(run_dir / "metrics.json")
    diagnosis = _json_file(run_dir / "diagnosis.json") or {}
    if metrics is not None:
        final = {s: {k: metrics[s].get(k) for k in ("loss", "accuracy", "sequence_accuracy", "balanced_accuracy")
                     if k in metrics[s]} for s in ("train", "val", "test") if isinstance(metrics.get(s), dict)}
    else:
        last = history[-1] if history else {}
        final = {s: {"loss": last.get(f"{s}_loss"), "accuracy": last.get(f"{s}_accuracy")}
                 for s in ("train", "val") if f"{s}_loss" in last}
    return {"dir": str(run_dir), "data": cfg.data.path or cfg.data.name, "model": cfg.model.name,
            "status": "finished" if metrics is not None else "unfinished", "epochs": len(history),
            "planned_epochs": cfg.train.epochs,
            "best_epoch": metrics.get("best_epoch") if metrics is not None else best_epoch(history),
            "final": final, "findings": diagnosis.get("audit", []) + diagnosis.get("findings", []),
            "repairs": diagnosis.get("repairs", [])}


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise TrainwellError(f"cannot read {path}: {err}") from None


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """The epochs of history.jsonl (a line cut short by an interruption is left out)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise TrainwellError(f"cannot read {path}: {err.strerror}") from None
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
