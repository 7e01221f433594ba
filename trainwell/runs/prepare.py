"""The data of a run, made ready: loaded, checked, resampled and augmented as its config says.

Only the training split is changed (resampling, more rows, augmentation):
validation and test keep the real data and class frequencies.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from trainwell.config import Config, DataConfig
from trainwell.data import DATASETS, Data, Split, load_data
from trainwell.data.augment import expand_training_rows
from trainwell.data.imbalance import resample_split
from trainwell.doctor import Finding
from trainwell.doctor.audit import BAD_LABELS, NON_FINITE, unusable_rows
from trainwell.errors import TrainwellError
from trainwell.loop import Augment

__all__ = ["bad_rows", "configured_data", "dataset_names", "drop_bad_rows", "expand", "make_augment",
           "refuse_bad_rows", "resample"]


def configured_data(d: DataConfig) -> Data:
    """The embedded data set a config's ``data`` section names, split as it says."""
    return load_data(d.name, n_samples=d.n_samples, noise=d.noise, val_fraction=d.val_fraction,
                     test_fraction=d.test_fraction, seed=d.seed, imbalance_ratio=d.imbalance_ratio, **d.options)


def dataset_names() -> list[str]:
    return DATASETS.names()


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
