"""The data of a run, made ready: loaded, checked, resampled and augmented as its config says.

The data are an embedded set (``data.name``) or the user's own file
(``data.path``, :mod:`trainwell.runs.datafile`), split into train,
validation and test by the config's fractions and seed like an embedded set.
A run records the file's sha256 and shape in its ``config.yaml``
(:func:`record_data`), so that a rerun and ``evaluate`` read the same data
and refuse a file that changed.

Only the training split is changed (resampling, more rows, augmentation):
validation and test keep the real data and class frequencies.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from trainwell.config import Config, DataConfig
from trainwell.config.sections import CUSTOM_DATA
from trainwell.data import DATASETS, Data, Raw, Split, load_data, split_data
from trainwell.data.augment import expand_training_rows
from trainwell.data.datasets import make_imbalanced
from trainwell.data.imbalance import resample_split
from trainwell.doctor import Finding
from trainwell.doctor.audit import BAD_LABELS, NON_FINITE, unusable_rows
from trainwell.errors import TrainwellError
from trainwell.loop import Augment
from trainwell.runs.datafile import file_sha256, read_labelled

__all__ = ["bad_rows", "configured_data", "dataset_names", "drop_bad_rows", "expand", "make_augment",
           "record_data", "refuse_bad_rows", "resample", "unknown_data"]


def configured_data(d: DataConfig) -> Data:
    """The data a config's ``data`` section names, split as it says: an embedded set, or ``data.path``.

    Raises:
        TrainwellError: an unreadable file, one whose sha256 differs from the recorded
            ``data.sha256``, or data that are not embedded (``data.name: custom``) and not in a file.
    """
    if d.name != CUSTOM_DATA:
        return load_data(d.name, n_samples=d.n_samples, noise=d.noise, val_fraction=d.val_fraction,
                         test_fraction=d.test_fraction, seed=d.seed, imbalance_ratio=d.imbalance_ratio, **d.options)
    if d.path is None:
        raise TrainwellError("the run's data (data.name: custom) are not embedded: they were given from Python; "
                             "pass them again (train(..., data=...)), or evaluate with --data FILE")
    path = Path(d.path)
    if d.n_samples is not None or d.noise is not None:
        raise TrainwellError("data.n_samples and data.noise generate embedded sets; a data.path file is used whole")
    if d.sha256 is not None and path.is_file():
        _unchanged(path, file_sha256(path), d.sha256)
    x, y = read_labelled(path, d.target)
    kind = d.kind if d.kind != "auto" else "image" if x.ndim == 3 else "tabular"
    if kind == "image" and x.ndim != 3 or kind != "image" and x.ndim != 2:
        need = "(rows, h, w)" if kind == "image" else "(rows, features)"
        raise TrainwellError(f"{path}: data.kind={kind} needs x of shape {need}, got {tuple(x.shape)}")
    raw = Raw(x, y, kind)
    if d.imbalance_ratio is not None:
        raw = make_imbalanced(raw, d.imbalance_ratio, d.seed)
    return split_data(CUSTOM_DATA, raw, val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.seed)


def record_data(cfg: Config, data: Data | None = None) -> Config:
    """The config a run records for its data (``config.yaml``), checked before anything is written.

    * ``data.path``: the file's absolute path, its sha256 and its shape (read now;
      a recorded sha256 that differs is refused);
    * ``data`` given from Python that are not the config's own set (another
      ``Data.name``): ``data.name: custom`` and no file, so that nothing
      rebuilds other data under the config's name. Data named like the
      config's set (folds and resamples of it, as cross-validation passes) keep it.
    """
    d = cfg.data
    if data is not None and data.name != d.name:
        return cfg.model_copy(update={"data": d.model_copy(update={"name": CUSTOM_DATA, "path": None,
                                                                     "sha256": None, "shape": None})})
    if d.path is None:
        return cfg
    path = Path(d.path).expanduser().resolve()
    if not path.is_file():
        raise unknown_data(d.path)
    sha256 = file_sha256(path)
    if d.sha256 is not None:
        _unchanged(path, sha256, d.sha256)
    x, _ = read_labelled(path, d.target)
    return cfg.model_copy(update={"data": d.model_copy(update={"path": str(path), "sha256": sha256,
                                                                 "shape": list(x.shape)})})


def _unchanged(path: Path, now: str, recorded: str) -> None:
    if now != recorded:
        raise TrainwellError(f"{path} changed since the run read it (sha256 {now[:12]}..., recorded "
                             f"{recorded[:12]}...); restore that file, or set data.sha256=null to use it as it is")


def dataset_names() -> list[str]:
    return DATASETS.names()


def unknown_data(name: str) -> TrainwellError:
    """The line for ``--data NAME`` that is neither an embedded set nor a file."""
    if Path(name).suffix in (".csv", ".npz"):
        return TrainwellError(f"data file not found: {name}")
    return TrainwellError(f"{name!r} is neither a data set ({', '.join(dataset_names())}) nor a file (data files: "
                          ".npz with arrays x, y, or .csv)")


def bad_rows(data: Data) -> dict[str, dict[str, torch.Tensor]]:
    """Per split with any, the masks of :func:`~trainwell.doctor.audit.unusable_rows`.

    Checked before every run, doctor or not: a label out of range would stop the loss with an index
    error, a non-finite feature would turn the loss into NaN.
    """
    masks = {name: unusable_rows(getattr(data, name), data.n_classes) for name in ("train", "val", "test")}
    return {name: m for name, m in masks.items() if any(bool(v.any()) for v in m.values())}


def refuse_bad_rows(bad: dict[str, dict[str, torch.Tensor]], data: Data, doctor_on: bool) -> TrainwellError:
    """The one-line error for rows no model can train on."""
    name_of = {NON_FINITE: NON_FINITE, BAD_LABELS: f"labels outside 0..{data.n_classes - 1}"}
    said = "; ".join(f"{name_of[what]} ({name} rows {mask.nonzero().flatten()[:20].tolist()})"
                     for name, found in bad.items() for what, mask in found.items() if mask.any())
    return TrainwellError(f"the data hold {said}; fix them, or set doctor.repair=true"
                          f"{'' if doctor_on else ' and doctor.enabled=true'} to drop those rows")


def drop_bad_rows(data: Data, bad: dict[str, dict[str, torch.Tensor]], findings: list[Finding]) -> Data:
    """Remove the rows of :func:`bad_rows` (``doctor.repair``), and say so in the findings."""
    splits = {}
    for name, found in bad.items():
        split = getattr(data, name)
        keep = ~torch.stack(list(found.values())).any(dim=0)
        splits[name] = Split(split.x[keep], split.y[keep])
        findings.append(Finding("bad_input", "info", 0, 0, {"split": name, "dropped_rows": int((~keep).sum())},
                                cause="bad_input", remedy="the rows were dropped (doctor.repair)"))
    return replace(data, **splits)


def resample(data: Data, cfg: Config) -> Data:
    """Rebalance the training split only: validation and test keep the real class frequencies."""
    if data.kind == "sequence":
        raise TrainwellError("data.imbalance needs one class per row; sequence tasks have a class per token")
    imb = cfg.data.imbalance
    try:
        x, y = resample_split(data.train.x, data.train.y, imb.method, cfg.seed, **imb.arguments)
    except ValueError as err:
        raise TrainwellError(f"data.imbalance.method={imb.method}: {err}") from None
    return replace(data, train=Split(x, y))


def expand(data: Data, cfg: Config) -> Data:
    """More training rows: noisy duplicates and per-class Gaussian rows (``data.augment``)."""
    a = cfg.data.augment
    if not (a.duplicate or a.gaussian):
        return data
    if data.kind == "sequence":
        raise TrainwellError("data.augment.duplicate/gaussian need numeric features, not token sequences")
    x, y = expand_training_rows(data.train.x, data.train.y, duplicate=a.duplicate, gaussian=a.gaussian,
                                noise=a.noise, seed=cfg.seed)
    return replace(data, train=Split(x, y))


def make_augment(data: Data, cfg: Config) -> Augment | None:
    """The on-the-fly augmentation of training batches, or None; a change that does not fit fails here."""
    a = cfg.data.augment
    if not (a.noise or a.shift or a.rotate or a.crop):
        return None
    if data.kind == "sequence":
        raise TrainwellError("data.augment changes numeric features; sequence tasks are tokens")
    try:
        return Augment(data.kind, cfg.seed, data.std, noise=a.noise, shift=a.shift, rotate=a.rotate, crop=a.crop)
    except ValueError as err:
        raise TrainwellError(str(err)) from None
