"""The sixth held-out set (issue 18): real faults of published taxonomies, written before any rule change.

Modelled on Humbatova et al. 2020 ("Taxonomy of real faults in deep learning
systems": wrong loss, wrong activation of the last layer, wrong output width,
missing nonlinearity, wrong batch size for batch norm, wrong dropout rate,
wrong regularisation, unnormalised data), Zhang et al. 2018 (TensorFlow
program bugs: softmax applied twice, reduction sum vs mean), Karpathy's
"recipe for training neural networks" (inputs in [0, 255], input offsets,
softmax before the loss, underfitting that is mistaken for convergence) and
Vandewiele et al. 2021 (oversampling with SMOTE, or noisy copies, before the
split leaks near-duplicates into validation and test).

Written and committed in the eighth session before any of them was run and
before any rule of that session changed (python benchmarks/doctor/run.py
--held-out-6). Labels say what the injected fault does by its mechanism, not
what was seen; not to be tuned on.

Symptoms expected here that the doctor did not know when this set was
written (the lint of issue 18): ``double_softmax`` (a softmax output fed to
a loss that applies its own), ``small_output_gradient`` (a loss whose
gradient at the output is far smaller than cross-entropy's: sigmoid or
softmax outputs with MSE on many classes), ``loss_sum_reduction``,
``output_width_mismatch``, ``dropout_too_high``, ``small_batch_norm``,
``missing_nonlinearity``, ``weight_decay_on_norms``.

A case is a trainwell config, or a ``custom`` builder below: a plain torch
model, loss and optimizer trained by :class:`trainwell.loop.Trainer` with the
:class:`trainwell.doctor.DoctorCallback` (``Setup``), or a hand-written loop
with :class:`trainwell.doctor.Doctor` that returns its findings (``loop``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainwell.data import Data, Split, load_data
from trainwell.loop import Callback

SEED = 0


@dataclass
class Setup:
    """A hand-built run: trained by trainwell's Trainer with the doctor's callback."""

    model: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    data: Data
    epochs: int
    batch_size: int = 128
    callbacks: list[Any] = field(default_factory=list)


class StepSchedule(Callback):
    """Steps a torch scheduler after every update (OneCycle, warmup per step)."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def on_after_step(self, trainer) -> None:
        self.scheduler.step()


def _standardized(d: Data) -> Data:
    s = lambda split: Split((split.x - d.mean) / d.std, split.y)  # noqa: E731
    return Data(d.name, d.kind, s(d.train), s(d.val), s(d.test), d.n_classes, d.mean * 0, d.std * 0 + 1)


def _mlp(n_in: int, n_out: int, width: int = 128, depth: int = 2, act: type[nn.Module] = nn.ReLU,
         head: list[nn.Module] | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, n_out), *(head or []))


def _flat(d: Data) -> int:
    return math.prod(d.input_shape)


# ------------------------------------------------------------------ sick, by hand

def softmax_before_ce_mnist1d() -> Setup:
    # Zhang et al. 2018 / Karpathy: nn.Softmax at the end of the model, then F.cross_entropy applies its own:
    # the loss sees probabilities in [0, 1] as logits, its gradient is squeezed through the softmax's Jacobian
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=4000))
    model = _mlp(_flat(d), 10, head=[nn.Softmax(dim=1)])
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 15)


def softmax_before_ce_cnn_digits() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(32 * 16, 10), nn.Softmax(dim=-1))
    x_shape = lambda s: Split(s.x.reshape(len(s.x), 1, 8, 8), s.y)  # noqa: E731
    d = Data(d.name, d.kind, x_shape(d.train), x_shape(d.val), x_shape(d.test), d.n_classes, d.mean, d.std)
    return Setup(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), d, 15)


def sigmoid_mse_mnist1d() -> Setup:
    # Humbatova et al.: wrong loss for the task - sigmoid outputs against one-hot targets with MSE over 10 classes
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=4000))
    model = _mlp(_flat(d), 10, head=[nn.Sigmoid()])

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, F.one_hot(y, 10).float())

    return Setup(model, loss, torch.optim.SGD(model.parameters(), lr=0.1), d, 20)


def output_width_16_mnist1d() -> Setup:
    # Humbatova et al.: wrong number of output units - 16 logits for 10 classes (it trains: cross-entropy
    # pushes the 6 extra logits down, but the model's outputs do not match the classes)
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=4000))
    model = _mlp(_flat(d), 16)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 10)


def sum_reduction_sgd_mnist1d() -> Setup:
    # Zhang et al. 2018: reduction="sum" with a learning rate tuned for the mean: every step is 128x larger
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=4000))
    model = _mlp(_flat(d), 10)
    return Setup(model, nn.CrossEntropyLoss(reduction="sum"), torch.optim.SGD(model.parameters(), lr=0.1), d, 10)


def sum_reduction_momentum_moons() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("moons"))
    model = _mlp(2, 2, 64, 3)
    return Setup(model, nn.CrossEntropyLoss(reduction="sum"),
                 torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), d, 10)


def stacked_linear_spiral() -> Setup:
    # Humbatova et al.: missing activation - three Linear layers in a row are one linear map
    torch.manual_seed(SEED)
    d = _standardized(load_data("spiral"))
    model = nn.Sequential(nn.Linear(2, 64), nn.Linear(64, 64), nn.Linear(64, 3))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 3e-3), d, 30)


def stacked_linear_dropout_moons() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("moons"))
    model = nn.Sequential(nn.Linear(2, 64), nn.Dropout(0.1), nn.Linear(64, 64), nn.Dropout(0.1), nn.Linear(64, 2))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 3e-3), d, 30)


class _LNMLP(nn.Module):
    def __init__(self, n_in: int, n_out: int, width: int = 128) -> None:
        super().__init__()
        self.fc1, self.norm1 = nn.Linear(n_in, width), nn.LayerNorm(width)
        self.fc2, self.norm2 = nn.Linear(width, width), nn.LayerNorm(width)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.fc1(x.flatten(1))))
        return self.head(F.relu(self.norm2(self.fc2(x))))


def weight_decay_on_norms_mnist1d() -> Setup:
    # Humbatova et al.: wrong regularisation - the user meant to leave biases and norms undecayed, but the
    # filter tests the name for "bias" only: the LayerNorm gains are decayed at 0.5
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=4000))
    model = _LNMLP(_flat(d), 10)
    decay = [p for n, p in model.named_parameters() if "bias" not in n]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.5}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-3)
    return Setup(model, F.cross_entropy, optimizer, d, 10)


def bn_batch_2_cnn_digits() -> Setup:
    # Humbatova et al.: batch size too small for batch norm - 2 rows' mean and variance per channel
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    x_shape = lambda s: Split(s.x.reshape(len(s.x), 1, 8, 8), s.y)  # noqa: E731
    d = Data(d.name, d.kind, x_shape(d.train), x_shape(d.val), x_shape(d.test), d.n_classes, d.mean, d.std)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 64, 10))
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.01), d, 3, batch_size=2)


# ------------------------------------------------------------------ problems in the data

def _all_rows(d: Data) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([d.train.x, d.val.x, d.test.x]), torch.cat([d.train.y, d.val.y, d.test.y])


def _resplit(d: Data, x: torch.Tensor, y: torch.Tensor, seed: int = 1) -> Data:
    """Shuffle all rows and split 60/20/20 again (what a pipeline that resamples before splitting does)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g)
    x, y = x[order], y[order]
    a, b = int(0.6 * len(x)), int(0.8 * len(x))
    train = Split(x[:a], y[:a])
    mean, std = train.x.mean(0), train.x.std(0).clamp_min(1e-8)
    return Data(d.name, d.kind, train, Split(x[a:b], y[a:b]), Split(x[b:], y[b:]), d.n_classes, mean, std)


def smote_before_split(name: str, n: int | None = None) -> Data:
    """SMOTE-style synthesis on every row (a new row between each row and a random one of its 5 nearest
    same-class rows), then the split (Vandewiele et al. 2021)."""
    d = load_data(name, n_samples=n)
    x, y = _all_rows(d)
    rng = np.random.default_rng(7)
    flat = x.reshape(len(x), -1)
    new = []
    for c in range(d.n_classes):
        idx = torch.nonzero(y == c).flatten()
        xc = flat[idx]
        dist = torch.cdist(xc, xc)
        dist.fill_diagonal_(math.inf)
        nn_idx = dist.topk(5, largest=False).indices
        pick = nn_idx[torch.arange(len(xc)), torch.as_tensor(rng.integers(0, 5, len(xc)))]
        gap = torch.as_tensor(rng.random((len(xc), 1)), dtype=x.dtype)
        new.append((xc + gap * (xc[pick] - xc), torch.full((len(xc),), c)))
    xs = torch.cat([flat] + [a for a, _ in new]).reshape(-1, *x.shape[1:])
    ys = torch.cat([y] + [b for _, b in new])
    return _resplit(d, xs, ys)


def noisy_copies_before_split(name: str, copies: int = 2, noise: float = 0.01) -> Data:
    """Every row plus ``copies`` copies with Gaussian noise of ``noise`` feature stds, then the split."""
    d = load_data(name)
    x, y = _all_rows(d)
    g = torch.Generator().manual_seed(3)
    std = x.std(0, keepdim=True)
    xs = torch.cat([x] + [x + noise * std * torch.randn(x.shape, generator=g) for _ in range(copies)])
    return _resplit(d, xs, y.repeat(copies + 1))


def _mapped(name: str, f: Callable[[torch.Tensor], torch.Tensor], n: int | None = None) -> Data:
    d = load_data(name, n_samples=n)
    s = lambda split: Split(f(split.x), split.y)  # noqa: E731
    train = s(d.train)
    return Data(d.name, d.kind, train, s(d.val), s(d.test), d.n_classes, train.x.mean(0),
                train.x.std(0).clamp_min(1e-8))


def label_noise(name: str, share: float, n: int | None = None) -> Data:
    """A share of the training and validation labels replaced by random classes."""
    d = load_data(name, n_samples=n)
    g = torch.Generator().manual_seed(5)

    def noisy(split: Split) -> Split:
        y = split.y.clone()
        flip = torch.rand(len(y), generator=g) < share
        y[flip] = torch.randint(0, d.n_classes, (int(flip.sum()),), generator=g)
        return Split(split.x, y)

    return Data(d.name, d.kind, noisy(d.train), noisy(d.val), d.test, d.n_classes, d.mean, d.std)


DATA_6: dict[str, Callable[[], Data]] = {
    "smote_digits": lambda: smote_before_split("digits"),
    "smote_cancer": lambda: smote_before_split("breast_cancer"),
    "noisy_copies_moons": lambda: noisy_copies_before_split("moons"),
    "noisy_copies_mnist1d": lambda: noisy_copies_before_split("mnist1d", 1, 0.02),
    "digits_0_255": lambda: _mapped("digits", lambda x: x * (255.0 / 16.0)),
    "digits_0_1": lambda: _mapped("digits", lambda x: x / 16.0),
    "mnist1d_offset": lambda: _mapped("mnist1d", lambda x: x + 30.0, 3000),
    "blobs_offset": lambda: _mapped("blobs", lambda x: x + 200.0),
    "moons_label_noise_30": lambda: label_noise("moons", 0.3, 2000),
    "mnist1d_label_noise_20": lambda: label_noise("mnist1d", 0.2, 3000),
    "spiral_label_noise_30": lambda: label_noise("spiral", 0.3, 2000),
}


# ------------------------------------------------------------------ healthy, by hand

def label_smoothing_digits() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _mlp(_flat(d), 10)
    return Setup(model, nn.CrossEntropyLoss(label_smoothing=0.1), torch.optim.Adam(model.parameters(), 1e-3), d, 15)


def onecycle_mnist1d() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 256)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    epochs, batch = 12, 128
    steps = epochs * math.ceil(len(d.train) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=steps)
    return Setup(model, F.cross_entropy, optimizer, d, epochs, batch, [StepSchedule(sched)])


class _Transformer(nn.Module):
    """MNIST-1D's 40 steps as tokens: a 2-layer encoder, mean-pooled."""

    def __init__(self, pre_ln: bool) -> None:
        super().__init__()
        self.embed = nn.Linear(1, 32)
        self.pos = nn.Parameter(torch.randn(1, 40, 32) * 0.02)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=pre_ln)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(len(x), -1, 1)) + self.pos  # (batch, time, d)
        return self.head(self.encoder(h).mean(1))


def transformer_warmup_mnist1d() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _Transformer(pre_ln=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    epochs, batch = 10, 64
    per_epoch = math.ceil(len(d.train) / batch)
    warm = per_epoch  # one epoch of linear warmup, then constant
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm))
    return Setup(model, F.cross_entropy, optimizer, d, epochs, batch, [StepSchedule(sched)])


class _PreLNResidualMLP(nn.Module):
    def __init__(self, n_in: int, n_out: int, width: int = 64, blocks: int = 6) -> None:
        super().__init__()
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(),
                                                  nn.Linear(2 * width, width)) for _ in range(blocks))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x.flatten(1))
        for block in self.blocks:
            h = h + block(h)
        return self.head(self.norm(h))


def preln_residual_mlp_spiral() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("spiral"))
    model = _PreLNResidualMLP(2, 3)
    return Setup(model, F.cross_entropy, torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01), d, 30)


def adam_zero_head_moons() -> Setup:
    # a head started near zero (as ViT/DiT heads are): Adam's first step is ~lr per weight, several times the
    # head's own size, then the steps shrink relative to the grown weights - not a rate too high
    torch.manual_seed(SEED)
    d = _standardized(load_data("moons", n_samples=2000))
    model = _mlp(2, 2, 64, 3)
    nn.init.normal_(model[-1].weight, std=1e-4)
    nn.init.zeros_(model[-1].bias)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 3e-3), d, 15)


def small_batch_relu_digits() -> Setup:
    # batches of 8 rows from 10 classes: a class-specific ReLU unit is 0 for a whole batch often, dead never
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _mlp(_flat(d), 10, 256)
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), d, 5,
                 batch_size=8)


def grad_accumulation_loop() -> list[Any]:
    """A hand-written loop accumulating 4 micro-batches of 32 per update, with the doctor's three lines."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    micro, accum, epochs = 32, 4, 10
    per_epoch = math.ceil(len(d.train) / micro)
    doctor = Doctor(model, optimizer, total_steps=epochs * per_epoch)
    g = torch.Generator().manual_seed(0)
    with doctor:
        for _ in range(epochs):
            order = torch.randperm(len(d.train), generator=g)
            total, correct = 0.0, 0
            optimizer.zero_grad()
            for i in range(per_epoch):
                idx = order[i * micro:(i + 1) * micro]
                x, y = d.train.x[idx], d.train.y[idx]
                out = model(x)
                loss = F.cross_entropy(out, y) / accum
                loss.backward()
                doctor.observe(loss * accum, inputs=x, targets=y)
                if (i + 1) % accum == 0 or i + 1 == per_epoch:
                    optimizer.step()
                    optimizer.zero_grad()
                total += float(loss) * accum * len(y)
                correct += int((out.argmax(1) == y).sum())
            with torch.no_grad():
                model.eval()
                vo = model(d.val.x)
                model.train()
            doctor.end_epoch(train_loss=total / len(d.train), val_loss=float(F.cross_entropy(vo, d.val.y)),
                             train_acc=correct / len(d.train), val_acc=float((vo.argmax(1) == d.val.y).float().mean()))
        return doctor.findings


CUSTOM_6: dict[str, Callable[[], Any]] = {f.__name__: f for f in (
    softmax_before_ce_mnist1d, softmax_before_ce_cnn_digits, sigmoid_mse_mnist1d, output_width_16_mnist1d,
    sum_reduction_sgd_mnist1d, sum_reduction_momentum_moons, stacked_linear_spiral, stacked_linear_dropout_moons,
    weight_decay_on_norms_mnist1d, bn_batch_2_cnn_digits, label_smoothing_digits, onecycle_mnist1d,
    transformer_warmup_mnist1d, preln_residual_mlp_spiral, adam_zero_head_moons, small_batch_relu_digits,
    grad_accumulation_loop)}
