"""One-class learning as a run: learn what the normal class looks like, flag every other row.

When the rare class is too rare to learn from (or unknown), train on the
normal class only (:class:`~trainwell.one_class.OneClassAutoencoder`, set by
the config's ``one_class`` section) and score every validation and test row
as normal or outlier. The run directory holds ``config.yaml`` and
``metrics.json``: per split, the outlier task's accuracy, balanced accuracy,
per-class recall (class 0 normal, class 1 outlier) and confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainwell.config import Config, apply_overrides, resolve_config
from trainwell.data import Data, Split
from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text
from trainwell.metrics import class_metrics
from trainwell.one_class import OneClassAutoencoder
from trainwell.runs.directory import new_run_dir, write_json
from trainwell.runs.prepare import bad_rows, configured_data, refuse_bad_rows

__all__ = ["train_one_class"]


def _scores(detector: OneClassAutoencoder, split: Split, normal: int) -> dict[str, Any]:
    outlier = (split.y != normal).long()                    # the truth: 1 for every row of another class
    flagged = torch.as_tensor(detector.predict(split.x.reshape(len(split.x), -1).numpy()) == -1).long()
    metrics = class_metrics(flagged, outlier, 2)
    metrics["accuracy"] = float((flagged == outlier).float().mean()) if len(outlier) else 0.0
    metrics["rows"] = len(outlier)
    return metrics


def train_one_class(config: Config | dict[str, Any] | str | Path | None = None, *, overrides: Sequence[str] = (),
                    out: str | Path | None = None, data: Data | None = None) -> dict[str, Any]:
    """Fit a one-class autoencoder to the normal class of a config's data and score its splits.

    Args:
        config: a config (anything :func:`~trainwell.train` takes); its ``one_class`` section sets the
            autoencoder, its ``data`` section the data.
        overrides: ``key=value`` changes.
        out: the run directory (new or empty).
        data: your own data instead of the config's data set.

    Returns:
        The content of ``metrics.json`` plus ``dir``.

    Raises:
        TrainwellError: a sequence task, a normal class with fewer than two training rows, or bad rows.
    """
    cfg = resolve_config(config)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    data = configured_data(cfg.data) if data is None else data
    if data.kind == "sequence":
        raise TrainwellError("one-class learning needs one class per row; sequence tasks have a class per token")
    bad = bad_rows(data)
    if bad:
        raise refuse_bad_rows(bad, data, doctor_on=True)
    counts = data.class_counts()
    o = cfg.one_class
    normal = int(counts.argmax()) if o.normal_class is None else o.normal_class
    if normal >= data.n_classes or counts[normal] < 2:
        raise TrainwellError(f"one_class.normal_class={normal}: the training split has "
                             f"{int(counts[normal]) if normal < data.n_classes else 0} rows of it (class counts "
                             f"{counts.tolist()}); choose a class with at least two rows")
    rows = data.train.x[data.train.y == normal]
    detector = OneClassAutoencoder(bottleneck=o.bottleneck, width=o.width, epochs=o.epochs, lr=o.lr,
                                   batch_size=o.batch_size, quantile=o.quantile, random_state=cfg.seed)
    detector.fit(rows.reshape(len(rows), -1).numpy().astype(np.float32))
    run_dir = new_run_dir(out, f"{cfg.run_name}-one-class")  # only now: bad input writes nothing
    atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
    metrics = {"normal_class": normal, "threshold": detector.threshold_,
               **{name: _scores(detector, getattr(data, name), normal) for name in ("train", "val", "test")}}
    write_json(run_dir / "metrics.json", metrics)
    return {**metrics, "dir": str(run_dir)}
