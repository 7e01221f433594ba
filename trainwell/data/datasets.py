"""Embedded data sets, all generated or bundled locally (no downloads).

Every set is split into train / validation / test; the test split is never
used for training or for any choice (seed 003's discipline). Features keep
their raw values here; the standardisation statistics (mean and std per
feature, from the training split only) travel with the data and become the
model's first layer, so a saved model takes raw features.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import numpy as np
import torch
from trainwell.errors import TrainwellError
from trainwell.data.sequences import make_sequence_task
from trainwell.registry import Registry

__all__ = ["DATASETS", "Data", "DataSpec", "Raw", "Split", "load_data", "split_data"]

Kind = Literal["tabular", "signal", "image", "sequence"]


@dataclass(frozen=True)
class Split:
    """One split: features ``x`` (float32, ``(rows, *input_shape)``; sequence tasks: int64 tokens) and labels
    ``y`` (int64 ``(rows,)``; sequence tasks: ``(rows, steps)``)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class DataSpec:
    """What a model (and its loss) must know about the data: saved with the model, read back to rebuild it."""

    input_shape: tuple[int, ...]
    n_classes: int
    kind: str = "tabular"
    input_vocab: int | None = None     # sequence data: source token count
    target_length: int | None = None   # sequence data: output steps
    class_counts: tuple[int, ...] | None = None  # training rows per class (class-weighted losses)

    def to_dict(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "n_classes": self.n_classes, "kind": self.kind,
                "input_vocab": self.input_vocab, "target_length": self.target_length,
                "class_counts": None if self.class_counts is None else list(self.class_counts)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataSpec":
        counts = d.get("class_counts")
        return cls(tuple(d["input_shape"]), int(d["n_classes"]), d.get("kind", "tabular"), d.get("input_vocab"),
                   d.get("target_length"), None if counts is None else tuple(counts))


@dataclass(frozen=True)
class Data:
    """A data set ready for training: three splits and what the model needs to know."""

    name: str
    kind: Kind
    train: Split
    val: Split
    test: Split
    n_classes: int
    mean: torch.Tensor  # (*input_shape,) training-split mean
    std: torch.Tensor   # (*input_shape,) training-split std (1 where a feature is constant)
    input_vocab: int | None = None  # sequence tasks: source tokens

    @property
    def target_length(self) -> int | None:
        return self.train.y.shape[1] if self.train.y.dim() > 1 else None

    def class_counts(self) -> torch.Tensor:
        """Training rows (sequence tasks: target tokens) per class ``(n_classes,)``."""
        return torch.bincount(self.train.y.flatten(), minlength=self.n_classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.input_shape, self.n_classes, self.kind, self.input_vocab, self.target_length,
                        tuple(self.class_counts().tolist()))


@dataclass(frozen=True)
class Raw:
    """What a loader returns: all rows, and a fixed test split where the set has one."""

    x: np.ndarray
    y: np.ndarray
    kind: Kind
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    n_classes: int | None = None    # None: from the labels
    input_vocab: int | None = None  # sequence tasks: source tokens


Loader = Callable[[int | None, float | None, int], Raw]
DATASETS: Registry = Registry("dataset")


@contextmanager
def _global_random_state_kept() -> Iterator[None]:
    """Run code that seeds the global RNGs (mnist1d does) without touching the caller's."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@DATASETS.register("mnist1d", "MNIST-1D: 10 classes of 1-D signals of length 40 (Greydanus 2020), generated locally "
                   "(option shuffle_seq: the 40 positions in one fixed random order)", default_samples=5000)
def _mnist1d(n_samples: int | None, noise: float | None, seed: int, shuffle_seq: bool = False) -> Raw:
    from mnist1d.data import get_dataset_args, make_dataset  # never get_dataset: it downloads

    args = get_dataset_args()
    args.num_samples = n_samples or 5000
    args.seed = seed
    args.shuffle_seq = bool(shuffle_seq)  # the same rows, every row's positions permuted alike (mnist1d's own)
    if noise is not None:
        args.iid_noise_scale = noise
    with _global_random_state_kept():
        d = make_dataset(args)
    return Raw(d["x"], d["y"], "signal", d["x_test"], d["y_test"])


@DATASETS.register("digits", "8x8 images of handwritten digits, 10 classes (scikit-learn's bundled copy)",
                   default_samples=1797)
def _digits(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    from sklearn import datasets as skd

    d = skd.load_digits()
    return Raw(d.images, d.target, "image")


@DATASETS.register("breast_cancer", "Wisconsin breast cancer: 30 features of very different scales, 2 classes",
                   default_samples=569)
def _breast_cancer(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    from sklearn import datasets as skd

    d = skd.load_breast_cancer()
    return Raw(d.data, d.target, "tabular")


@DATASETS.register("moons", "two interleaving half circles in 2-D (noise 0.2)", default_samples=1000)
def _moons(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    from sklearn import datasets as skd

    x, y = skd.make_moons(n_samples or 1000, noise=0.2 if noise is None else noise, random_state=seed)
    return Raw(x, y, "tabular")


@DATASETS.register("circles", "a circle inside a circle in 2-D (noise 0.1)", default_samples=1000)
def _circles(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    from sklearn import datasets as skd

    x, y = skd.make_circles(n_samples or 1000, noise=0.1 if noise is None else noise, factor=0.5,
                            random_state=seed)
    return Raw(x, y, "tabular")


@DATASETS.register("spiral", "three interleaved spiral arms in 2-D, 3 classes (noise 0.2)", default_samples=1500)
def _spiral(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    rng = np.random.default_rng(seed)
    n, arms = n_samples or 1500, 3
    y = np.arange(n) % arms
    r = rng.uniform(0.05, 1.0, n)
    theta = y * 2 * np.pi / arms + 4 * r + rng.normal(0.0, 0.2 if noise is None else noise, n)
    return Raw(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1), y, "tabular")


@DATASETS.register("xor", "points in the square labelled by the sign of x1*x2 (noise 0.05)", default_samples=1000)
def _xor(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n_samples or 1000, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return Raw(x + rng.normal(0.0, 0.05 if noise is None else noise, x.shape), y, "tabular")


@DATASETS.register("blobs", "four Gaussian clusters in 2-D (std 1.0)", default_samples=1000)
def _blobs(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    from sklearn import datasets as skd

    x, y = skd.make_blobs(n_samples or 1000, centers=4, cluster_std=1.0 if noise is None else noise,
                          random_state=seed)
    return Raw(x, y, "tabular")


@DATASETS.register("imbalanced", "3 classes of 10 features with weights 0.01 / 0.05 / 0.94 (scikit-learn's "
                   "make_classification)", default_samples=5000)
def _imbalanced(n_samples: int | None, noise: float | None, seed: int) -> Raw:
    from sklearn import datasets as skd

    x, y = skd.make_classification(n_samples or 5000, n_features=10, n_informative=5, n_redundant=2, n_classes=3,
                                   n_clusters_per_class=1, weights=[0.01, 0.05, 0.94],
                                   flip_y=0.01 if noise is None else noise, random_state=seed)
    return Raw(x, y, "tabular")


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, what: str, stratify: bool):
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(x, y, test_size=fraction, stratify=y if stratify else None, random_state=seed)
    except ValueError as err:
        counts = dict(zip(*np.unique(y, return_counts=True))) if stratify else {}
        raise TrainwellError(f"cannot split off a {'stratified ' if stratify else ''}{what} set of {fraction:.0%}: "
                             f"{err} (class counts {counts}); use more samples or a larger fraction") from None


def split_data(name: str, raw: Raw, *, val_fraction: float, test_fraction: float, seed: int) -> Data:
    """Split ``raw`` into train / val / test (stratified by class) and compute training statistics.

    Sequence tasks (targets of several tokens) are split at random, keep
    integer tokens, and have no feature statistics (mean 0, std 1).
    """
    sequence = raw.kind == "sequence"
    x_type = np.int64 if sequence else np.float32
    x, y = np.asarray(raw.x, dtype=x_type), np.asarray(raw.y).astype(np.int64)
    if raw.x_test is None:
        x, x_test, y, y_test = _split(x, y, test_fraction, seed, "test", not sequence)
    else:
        x_test, y_test = np.asarray(raw.x_test, dtype=x_type), np.asarray(raw.y_test).astype(np.int64)
    x_train, x_val, y_train, y_val = _split(x, y, val_fraction, seed + 1, "validation", not sequence)
    if sequence:
        mean, std = np.zeros(x_train.shape[1:], np.float32), np.ones(x_train.shape[1:], np.float32)
    else:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std < 1e-8] = 1.0  # constant features (blank pixels) stay as they are
    n_classes = raw.n_classes or int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    t = torch.from_numpy
    return Data(name, raw.kind, Split(t(x_train), t(y_train)), Split(t(x_val), t(y_val)),
                Split(t(x_test), t(y_test)), n_classes, t(mean), t(std), raw.input_vocab)


def make_imbalanced(raw: Raw, ratio: float, seed: int) -> Raw:
    """Keep ``ratio`` of the rows of every class but the largest (random rows, seeded), in every split."""
    rng = np.random.default_rng(seed)

    def cut(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels, counts = np.unique(y, return_counts=True)
        largest = labels[np.argmax(counts)]
        keep = [np.flatnonzero(y == c) if c == largest else
                rng.choice(np.flatnonzero(y == c), size=max(2, round(ratio * n)), replace=False)
                for c, n in zip(labels, counts)]
        idx = np.sort(np.concatenate(keep))
        return x[idx], y[idx]

    x, y = cut(np.asarray(raw.x), np.asarray(raw.y))
    x_test, y_test = (None, None) if raw.x_test is None else cut(np.asarray(raw.x_test), np.asarray(raw.y_test))
    return Raw(x, y, raw.kind, x_test, y_test, raw.n_classes, raw.input_vocab)


def load_data(name: str, *, n_samples: int | None = None, noise: float | None = None,
              val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 42,
              imbalance_ratio: float | None = None, **options: object) -> Data:
    """Generate or load the embedded data set ``name`` and split it.

    The data depend only on ``seed`` (not on the global random state, which is
    left as it was). ``options`` go to the set's generator (sequence tasks:
    ``length``, ``vocab``). ``imbalance_ratio`` keeps that share of every
    class but the largest.

    Example:
        >>> data = load_data("moons", n_samples=200)
        >>> data.input_shape, data.n_classes
        ((2,), 2)
    """
    raw = DATASETS.build(name, n_samples, noise, seed, **options)
    if imbalance_ratio is not None:
        if raw.kind == "sequence":
            raise TrainwellError("data.imbalance_ratio needs one class per row; sequence tasks have a class per token")
        raw = make_imbalanced(raw, imbalance_ratio, seed)
    return split_data(name, raw, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)


# The sequence tasks are generated data sets too: registered here, so that DATASETS is complete once imported.
def _register_sequence_task(task: str, description: str) -> None:
    def load(n_samples: int | None, noise: float | None, seed: int, length: int = 8, vocab: int = 10) -> Raw:
        x, y = make_sequence_task(task, n_samples or 5000, length=length, vocab=vocab, seed=seed)
        return Raw(x, y, "sequence", n_classes=vocab, input_vocab=vocab + (task == "addition"))

    DATASETS.add(task, load, description, default_samples=5000)


_register_sequence_task("copy", "sequence task: output the source tokens (options length=8, vocab=10)")
_register_sequence_task("reverse", "sequence task: output the source backwards (options length=8, vocab=10)")
_register_sequence_task("sort", "sequence task: output the source tokens sorted (options length=8, vocab=10)")
_register_sequence_task("addition", "sequence task: the digits of a + b in base vocab (options length=8 digits, vocab=10)")
