"""The seventh held-out set (issue 18): real faults a new user brings, written by someone who had not read the rules.

Written and committed before its first run (python benchmarks/doctor/run.py --held-out-7), by a writer who had
read the doctor's vocabulary (trainwell/doctor/findings.py), the API part of docs/doctor.md and the benchmark
harness, and none of the rules, their thresholds or the trigger columns of docs/doctor.md. Labels say what the
injected fault does by its mechanism, not what was seen (nothing here was trained before the commit); not to be
tuned on.

Sources the faults are modelled on:

* Humbatova et al. 2020, "Taxonomy of real faults in deep learning systems" (ICSE): wrong initialisation of
  weights and biases, wrong number of output units, missing activation, wrong loss function, wrong dropout rate,
  suboptimal momentum / learning rate, wrong regularisation, unbalanced training data, missing preprocessing,
  missing zero_grad / wrong optimisation order, training data overlapping the test data;
* Zhang et al. 2018, "An empirical study on TensorFlow program bugs" (ISSTA): NaN from a division by zero
  without epsilon, wrong API usage (a loss that expects log-probabilities fed probabilities), confused
  hyperparameters (a keep probability ported as a drop probability);
* Islam et al. 2019, "A comprehensive study on deep learning bug characteristics" (FSE): data bugs (unshuffled
  data, unscaled inputs), structure bugs (missing nonlinearity), API bugs (a scheduler stepped at the wrong place);
* Karpathy 2019, "A recipe for training neural networks": forgetting zero_grad, not shuffling, inputs not
  normalised, check the last layer and the loss, overfit-then-regularise, the learning rate;
* Zhang et al. 2021, AUTOTRAINER (ICSE): vanishing and exploding gradients, dying ReLU, oscillating loss, slow
  convergence;
* Schoop et al. 2021, UMLAUT (CHI): static checks of the model and the loss before training (output width,
  missing activation, softmax and loss mismatch, dropout rate);
* leakage beyond the listed taxonomies: Vandewiele et al. 2021 (oversampling before the split), Kapoor and
  Narayanan 2023 ("Leakage and the reproducibility crisis": overlapping windows of a time series split at random);
* initialisation: Glorot and Bengio 2010 (PyTorch's default init shrinks a deep tanh net's signal), Zhang,
  Dauphin and Ma 2019 (Fixup: a residual net without normalisation or scaled init doubles its variance per block).

A case is a trainwell config (cases.cfg), or a ``custom`` builder below: a plain torch model, loss and optimizer
trained by :class:`trainwell.loop.Trainer` with the doctor's callback (``Setup`` of held_out_6), or a hand-written
loop with :class:`trainwell.doctor.Doctor` that returns its findings.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cases import DATA, NAN_ALLOW, UNSTABLE, VANISH_ALLOW, Case, _standardize_off, cfg
from held_out_6 import Setup, StepSchedule, _flat, _mlp, _resplit, _standardized, label_noise
from trainwell.data import Data, Split, load_data

SEED = 0
ADAM = {"name": "adam", "lr": 0.001}
SHRUNK = {"underfitting", "slow_convergence"}  # a fault that shrinks the loss's gradient makes training crawl
SCALE_ALLOW = {"oscillating_loss", "slow_convergence", "dead_relu", "learning_rate_too_high", "underfitting",
               "exploding_gradients", "divergence", "nan_loss"}  # a gradient scales with its input


def _images(d: Data) -> Data:
    """Digits as (rows, 1, 8, 8) for a 2-D conv net."""
    s = lambda split: Split(split.x.reshape(len(split.x), 1, 8, 8), split.y)  # noqa: E731
    return Data(d.name, d.kind, s(d.train), s(d.val), s(d.test), d.n_classes, d.mean.reshape(1, 8, 8),
                d.std.reshape(1, 8, 8))


def _accuracy_loss(model: nn.Module, split: Split) -> tuple[float, float]:
    with torch.no_grad():
        was = model.training
        model.eval()
        out = model(split.x)
        model.train(was)
    return float(F.cross_entropy(out, split.y)), float((out.argmax(1) == split.y).float().mean())


# ------------------------------------------------------------------ sick, hand-written loops

def no_zero_grad_digits() -> list[Any]:
    """Karpathy's recipe / Humbatova et al. (missing zero_grad): the loop never clears the gradients, so each
    .grad is the sum of every gradient since the start and each SGD step is lr times that growing sum."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _mlp(_flat(d), 10, 128, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batch, epochs = 64, 10
    per_epoch = math.ceil(len(d.train) / batch)
    g = torch.Generator().manual_seed(0)
    with Doctor(model, optimizer, total_steps=epochs * per_epoch, loss_fn=F.cross_entropy, n_classes=10) as doctor:
        for _ in range(epochs):
            order = torch.randperm(len(d.train), generator=g)
            total, correct = 0.0, 0
            for i in range(per_epoch):
                idx = order[i * batch:(i + 1) * batch]
                x, y = d.train.x[idx], d.train.y[idx]
                out = model(x)
                loss = F.cross_entropy(out, y)
                loss.backward()  # no optimizer.zero_grad() anywhere: the fault
                doctor.observe(loss, inputs=x, targets=y)
                optimizer.step()
                total += float(loss) * len(y)
                correct += int((out.argmax(1) == y).sum())
            val_loss, val_acc = _accuracy_loss(model, d.val)
            doctor.end_epoch(train_loss=total / len(d.train), val_loss=val_loss, train_acc=correct / len(d.train),
                             val_acc=val_acc)
        return doctor.findings


def sorted_no_shuffle_mnist1d() -> list[Any]:
    """Islam et al. 2019 / Karpathy (data not shuffled): the rows are sorted by class and the loop walks them in
    order, so each stretch of batches holds one class and the model ends every epoch predicting the last classes.
    The loop measures the training split at the end of each epoch."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    order = torch.argsort(d.train.y, stable=True)
    x_all, y_all = d.train.x[order], d.train.y[order]
    model = _mlp(_flat(d), 10, 128, 2)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    batch, epochs = 64, 8
    per_epoch = math.ceil(len(x_all) / batch)
    with Doctor(model, optimizer, total_steps=epochs * per_epoch, loss_fn=F.cross_entropy, n_classes=10) as doctor:
        for _ in range(epochs):
            for i in range(per_epoch):
                x, y = x_all[i * batch:(i + 1) * batch], y_all[i * batch:(i + 1) * batch]
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=x, targets=y)
                optimizer.step()
            train_loss, train_acc = _accuracy_loss(model, d.train)
            val_loss, val_acc = _accuracy_loss(model, d.val)
            doctor.end_epoch(train_loss=train_loss, val_loss=val_loss, train_acc=train_acc, val_acc=val_acc)
        return doctor.findings


# ------------------------------------------------------------------ sick, hand-built models

def negative_bias_dead_relu_moons() -> Setup:
    """Humbatova et al. (wrong bias initialisation) / AUTOTRAINER (dying ReLU): a gate-style constant bias of -3
    (highway nets' transform gate) put on the second ReLU layer: its pre-activations are ~0.3 wide, so every unit
    is 0 for every input from step 0, and gets no gradient to come back."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("moons"))
    model = nn.Sequential(OrderedDict(hidden1=nn.Sequential(nn.Linear(2, 64), nn.ReLU()),
                                      hidden2=nn.Sequential(nn.Linear(64, 64), nn.ReLU()),
                                      out=nn.Linear(64, 2)))
    nn.init.constant_(model.hidden2[0].bias, -3.0)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 15)


class BatchStandardize(nn.Module):
    """A hand-written input normalisation over the batch, without an epsilon."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean(0)) / x.std(0)


def batch_standardize_no_eps_digits() -> Setup:
    """Zhang et al. 2018 (division by zero without epsilon): the model standardises its raw inputs per batch;
    digits' corner pixels are 0 in every image, so std = 0 and 0/0 = NaN in the first forward pass."""
    torch.manual_seed(SEED)
    d = load_data("digits")  # raw 0..16: the model is meant to standardise them itself
    model = nn.Sequential(OrderedDict(inputnorm=BatchStandardize(), flat=nn.Flatten(),
                                      fc1=nn.Linear(64, 128), act1=nn.ReLU(), fc2=nn.Linear(128, 128),
                                      act2=nn.ReLU(), out=nn.Linear(128, 10)))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 5)


def softmax_nll_mnist1d() -> Setup:
    """Zhang et al. 2018 (wrong API usage): nn.NLLLoss expects log-probabilities and gets softmax probabilities:
    the loss is -p_y, whose gradient at the logits, -p_y (1 - p_y), vanishes for confident mistakes."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=4000))
    model = _mlp(_flat(d), 10, 128, 2, head=[nn.Softmax(dim=1)])
    return Setup(model, nn.NLLLoss(), torch.optim.Adam(model.parameters(), 1e-3), d, 15)


def dropout_keep_prob_spiral() -> Setup:
    """Zhang et al. 2018 (confused hyperparameter) / Humbatova et al. (wrong dropout rate): a TF model's
    keep_prob=0.7 ported as nn.Dropout(0.7), which drops 70% of the units instead of 30%."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("spiral"))
    model = nn.Sequential(nn.Linear(2, 128), nn.ReLU(), nn.Dropout(0.7), nn.Linear(128, 128), nn.ReLU(),
                          nn.Dropout(0.7), nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.7), nn.Linear(128, 3))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 3e-3), d, 30)


def scheduler_per_batch_mnist1d() -> Setup:
    """Islam et al. 2019 (API misuse) / PyTorch forum classic: StepLR(step_size=2, gamma=0.5) meant per epoch,
    stepped after every batch: the rate halves every 2 updates and is ~1e-4 of its start after 2 epochs."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 128, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return Setup(model, F.cross_entropy, optimizer, d, 10, 128, [StepSchedule(sched)])


class _PlainResidual(nn.Module):
    """Residual blocks h + W2 relu(W1 h), He-initialised, no normalisation and no scaling of the branch."""

    def __init__(self, n_in: int, n_out: int, width: int = 64, blocks: int = 16) -> None:
        super().__init__()
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
                                    for _ in range(blocks))
        self.head = nn.Linear(width, n_out)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def residual_no_norm_16_circles() -> Setup:
    """Zhang, Dauphin and Ma 2019 (Fixup) / Humbatova et al. (wrong initialisation): 16 un-normalised residual
    blocks, each branch He-initialised: the stream's variance doubles per block (2^16 at the head) at step 0,
    and the gradient grows by the same factor towards the input."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("circles"))
    model = _PlainResidual(2, 2)
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.01), d, 10)


def ten_outputs_two_classes_cancer() -> Setup:
    """Humbatova et al. / UMLAUT (wrong number of output units): an MNIST head (10 logits) copied onto the two
    classes of breast cancer."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("breast_cancer"))
    model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 15, 64)


def linear_cnn_digits() -> Setup:
    """Humbatova et al. / UMLAUT (missing activation): two convolutions and a linear layer with no nonlinearity
    (and no pooling) between them: one linear map."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1), nn.Flatten(),
                          nn.Linear(32 * 64, 10))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 10)


# ------------------------------------------------------------------ problems in the data

def oversample_before_split(name: str = "imbalanced") -> Data:
    """Random oversampling (exact copies of minority rows, up to the largest class) on all rows, then the split:
    copies of the same row land in train, validation and test (Vandewiele et al. 2021)."""
    d = load_data(name)
    x = torch.cat([d.train.x, d.val.x, d.test.x])
    y = torch.cat([d.train.y, d.val.y, d.test.y])
    rng = np.random.default_rng(11)
    counts = torch.bincount(y, minlength=d.n_classes)
    target = int(counts.max())
    parts_x, parts_y = [x], [y]
    for c in range(d.n_classes):
        idx = torch.nonzero(y == c).flatten().numpy()
        extra = target - len(idx)
        if extra > 0:
            pick = torch.as_tensor(rng.choice(idx, size=extra, replace=True))
            parts_x.append(x[pick])
            parts_y.append(y[pick])
    return _resplit(d, torch.cat(parts_x), torch.cat(parts_y), seed=2)


def overlapping_windows(n_per_regime: int = 1500, length: int = 40, stride: int = 2) -> Data:
    """A sensor signal in three regimes (different mixtures of slow sinusoids plus noise), cut into windows of
    ``length`` steps every ``stride`` steps, labelled by regime, then split at random: a validation or test
    window overlaps by 38 of its 40 steps with its neighbours in training (Kapoor and Narayanan 2023)."""
    rng = np.random.default_rng(13)
    periods = [(60.0, 23.0), (45.0, 31.0), (75.0, 19.0)]
    xs, ys = [], []
    for label, (p1, p2) in enumerate(periods):
        n = n_per_regime * stride + length
        t = np.arange(n)
        signal = (np.sin(2 * np.pi * t / p1 + rng.uniform(0, 6.3)) + 0.5 * np.sin(2 * np.pi * t / p2)
                  + 0.1 * rng.standard_normal(n))
        windows = np.stack([signal[i:i + length] for i in range(0, n_per_regime * stride, stride)])
        xs.append(windows)
        ys.append(np.full(len(windows), label))
    x = torch.as_tensor(np.concatenate(xs), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate(ys), dtype=torch.int64)
    template = load_data("mnist1d", n_samples=100)  # a signal set: kind and name of a 1-D signal
    d = Data("mnist1d", template.kind, Split(x, y), Split(x[:1], y[:1]), Split(x[:1], y[:1]), 3,
             x.mean(0), x.std(0))
    return _resplit(d, x, y, seed=4)


def _scaled_signal(name: str, factor: float, n: int | None = None) -> Data:
    d = load_data(name, n_samples=n)
    s = lambda split: Split(split.x * factor, split.y)  # noqa: E731
    train = s(d.train)
    return Data(d.name, d.kind, train, s(d.val), s(d.test), d.n_classes, train.x.mean(0),
                train.x.std(0).clamp_min(1e-8))


DATA_7: dict[str, Callable[[], Data]] = {
    "oversampled_imbalanced": oversample_before_split,
    "overlapping_windows": overlapping_windows,
    "moons_label_noise_40_small": lambda: label_noise("moons", 0.4, 400),
}
DATA.update(DATA_7)


# ------------------------------------------------------------------ healthy, by hand

class _ResBlock1d(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv1d(c, c, 3, padding=1, bias=False), nn.BatchNorm1d(c)
        self.conv2, self.bn2 = nn.Conv1d(c, c, 3, padding=1, bias=False), nn.BatchNorm1d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class _ResNet1d(nn.Module):
    def __init__(self, n_out: int = 10, c: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, c, 5, padding=2, bias=False), nn.BatchNorm1d(c), nn.ReLU())
        self.blocks = nn.Sequential(_ResBlock1d(c), _ResBlock1d(c))
        self.head = nn.Linear(c, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x.reshape(len(x), 1, -1)))
        return self.head(h.mean(-1))


def resnet1d_bn_mnist1d() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _ResNet1d()
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 10, 64)


class _LNNet(nn.Module):
    def __init__(self, n_in: int, n_out: int, width: int = 128) -> None:
        super().__init__()
        self.fc1, self.ln1 = nn.Linear(n_in, width), nn.LayerNorm(width)
        self.fc2, self.ln2 = nn.Linear(width, width), nn.LayerNorm(width)
        self.out = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.ln1(self.fc1(x.flatten(1))))
        return self.out(F.gelu(self.ln2(self.fc2(h))))


def adamw_param_groups_digits() -> Setup:
    """Weight decay on the matrices only, biases and LayerNorm gains in the group without decay (done right)."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _LNNet(64, 10)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay,
                                                                             "weight_decay": 0.0}], lr=1e-3)
    return Setup(model, F.cross_entropy, optimizer, d, 15)


class _BiGRU(nn.Module):
    """Digits' 8 rows as 8 time steps of 8 pixels, a bidirectional GRU, the two final states to a linear head."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.gru = nn.GRU(8, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x.reshape(len(x), 8, 8))
        return self.head(torch.cat([h[0], h[1]], dim=1))


def bigru_digits() -> Setup:
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _BiGRU()
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 3e-3), d, 10, 64)


def sum_reduction_rate_scaled_moons() -> Setup:
    """reduction='sum' with the rate divided by the batch size: the same steps as the mean at 0.1."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("moons"))
    model = _mlp(2, 2, 64, 2)
    batch = 64
    return Setup(model, nn.CrossEntropyLoss(reduction="sum"),
                 torch.optim.SGD(model.parameters(), lr=0.1 / batch, momentum=0.9), d, 20, batch)


CUSTOM_7: dict[str, Callable[[], Any]] = {f.__name__: f for f in (
    no_zero_grad_digits, sorted_no_shuffle_mnist1d, negative_bias_dead_relu_moons, batch_standardize_no_eps_digits,
    softmax_nll_mnist1d, dropout_keep_prob_spiral, scheduler_per_batch_mnist1d, residual_no_norm_16_circles,
    ten_outputs_two_classes_cancer, linear_cnn_digits, resnet1d_bn_mnist1d, adamw_param_groups_digits, bigru_digits,
    sum_reduction_rate_scaled_moons)}


# ------------------------------------------------------------------ the cases

def _custom(name: str, custom: str, expect: set[str], allow: set[str] | None = None, **kw: Any) -> Case:
    return Case(name, {}, expect, allow or set(), custom=custom, **kw)


def _mlp_cfg(act: str, depth: int, width: int = 64, **kw: Any) -> dict[str, Any]:
    return {"name": "mlp", "activation": act, "depth": depth, "width": width, **kw}


def _cnn_cfg(act: str, depth: int, width: int = 16, **kw: Any) -> dict[str, Any]:
    return {"name": "cnn", "activation": act, "depth": depth, "width": width, **kw}


def _with_data(c: dict[str, Any], **data: Any) -> dict[str, Any]:
    c["data"].update(data)
    return c


HELD_OUT_7: list[Case] = [
    # --- the optimisation loop
    # Karpathy / Humbatova: no zero_grad: the gradient the step sees grows step by step (a running sum)
    _custom("ho7-no-zero-grad-digits", "no_zero_grad_digits", {"exploding_gradients"},
            UNSTABLE | {"divergence"}),
    # Islam et al. / Karpathy: class-sorted rows, never shuffled: the model ends each epoch on the last classes
    _custom("ho7-sorted-no-shuffle-mnist1d", "sorted_no_shuffle_mnist1d", {"underfitting"},
            {"oscillating_loss", "slow_convergence"}),
    # Islam et al.: StepLR meant per epoch stepped per batch: the rate decays to ~0 within two epochs
    _custom("ho7-scheduler-per-batch-mnist1d", "scheduler_per_batch_mnist1d", {"learning_rate_too_low"}, SHRUNK),
    # Humbatova et al. (suboptimal momentum): momentum 0.99 at a rate chosen for 0.9: the heavy ball overshoots
    Case("ho7-momentum-0.99-spiral", cfg("spiral", 20, None, _mlp_cfg("relu", 3),
                                         {"name": "momentum", "lr": 0.1, "momentum": 0.99}, data_batch=32),
         {"oscillating_loss"}, UNSTABLE | {"divergence"}),
    # AUTOTRAINER / Karpathy: RMSprop's first steps are ~lr / sqrt(1 - alpha) = 10x lr per weight: 0.5 against
    # GRU weights of ~0.18
    Case("ho7-rmsprop-lr0.05-gru-digits", cfg("digits", 10, None, {"name": "gru", "width": 32},
                                              {"name": "rmsprop", "lr": 0.05}),
         {"learning_rate_too_high"}, UNSTABLE | {"divergence"}),
    # Humbatova et al. (wrong learning rate): 1e1 typed for 1e-1, with Nesterov momentum: NaN
    Case("ho7-nesterov-lr10-cnn-mnist1d", cfg("mnist1d", 5, 4000, _cnn_cfg("relu", 3), {"name": "nesterov",
                                                                                     "lr": 10.0}),
         {"nan_loss"}, NAN_ALLOW | {"divergence", "oscillating_loss"}, cause="learning_rate_too_high"),
    # Humbatova et al. (wrong regularisation): an L2 coefficient of 1.0 (meant 1e-4): the penalty pulls every
    # weight to ~0 faster than the data push it, the net's output stays near constant
    Case("ho7-l2-1.0-mnist1d", cfg("mnist1d", 15, 3000, _mlp_cfg("relu", 3, 128), {"name": "sgd", "lr": 0.1},
                                   reg={"l2": 1.0}),
         {"underfitting"}, {"slow_convergence", "vanishing_gradients", "dead_relu"}),
    # --- initialisation and structure
    # Humbatova et al. (wrong bias init) / AUTOTRAINER (dying ReLU): bias -3 kills the second ReLU layer at step 0
    _custom("ho7-negative-bias-dead-relu-moons", "negative_bias_dead_relu_moons", {"dead_relu"},
            {"underfitting", "slow_convergence", "vanishing_gradients", "bad_initialisation"}, layer="hidden2"),
    # Glorot and Bengio 2010: ten tanh layers at PyTorch's default init (Var w = 1/(3 n_in)): the signal's std
    # shrinks ~0.58x a layer, the back-propagated gradient likewise towards the input
    Case("ho7-tanh-10-default-init-mnist1d", cfg("mnist1d", 15, 3000, _mlp_cfg("tanh", 10, 128),
                                                 {"name": "momentum", "lr": 0.01}),
         {"vanishing_gradients", "bad_initialisation"}, VANISH_ALLOW, layer="net.hidden0",
         main="vanishing_gradients"),
    # Fixup (Zhang et al. 2019): 16 un-normalised residual blocks, variance doubling per block
    _custom("ho7-residual-no-norm-16-circles", "residual_no_norm_16_circles",
            {"exploding_gradients", "bad_initialisation"},
            NAN_ALLOW | {"nan_loss", "divergence", "oscillating_loss", "slow_convergence", "underfitting",
                         "learning_rate_too_high"}),
    # UMLAUT / Humbatova et al.: 10 logits for 2 classes
    _custom("ho7-ten-outputs-two-classes-cancer", "ten_outputs_two_classes_cancer", {"output_width_mismatch"}),
    # UMLAUT / Humbatova et al.: conv, conv, linear with no activation
    _custom("ho7-linear-cnn-digits", "linear_cnn_digits", {"missing_nonlinearity"}, SHRUNK),
    # Zhang et al. 2018: keep_prob 0.7 ported as p = 0.7
    _custom("ho7-dropout-keep-prob-0.7-spiral", "dropout_keep_prob_spiral", {"dropout_too_high"}, SHRUNK),
    # --- the loss
    # Zhang et al. 2018: probabilities into NLLLoss (which expects log-probabilities): the loss is -p_y
    _custom("ho7-softmax-nll-mnist1d", "softmax_nll_mnist1d", {"small_output_gradient"}, SHRUNK),
    # Zhang et al. 2018: (x - mean) / std over the batch without epsilon: 0/0 on digits' blank corner pixels
    _custom("ho7-batch-standardize-no-eps-digits", "batch_standardize_no_eps_digits", {"nan_loss"},
            NAN_ALLOW | {"unscaled_inputs"}, cause="log_of_zero", layer="inputnorm"),
    # --- the data
    # Islam et al. / Karpathy (inputs not normalised): raw digits (0..16, mean ~5) into a GRU
    Case("ho7-gru-raw-digits", cfg("digits", 10, None, {"name": "gru", "width": 32}, ADAM, data_standardize=False),
         {"unscaled_inputs"}, SCALE_ALLOW | {"saturation", "vanishing_gradients"}),
    # Humbatova et al. (missing preprocessing): breast cancer's raw features (up to ~4000) into tanh units
    Case("ho7-tanh-raw-cancer", cfg("breast_cancer", 15, None, _mlp_cfg("tanh", 2, 64, init="xavier_normal"), ADAM,
                                    data_standardize=False),
         {"unscaled_inputs", "saturation"}, SCALE_ALLOW | {"vanishing_gradients", "bad_initialisation"},
         layer="net.hidden0", main="saturation"),
    # Humbatova et al. (unbalanced training data): nine of ten classes cut to 5% of their rows
    Case("ho7-mnist1d-imbalance-0.05-cnn", _with_data(cfg("mnist1d", 10, 4000, _cnn_cfg("relu", 3), ADAM),
                                                      imbalance_ratio=0.05),
         {"class_imbalance"}, set()),
    # Vandewiele et al. 2021: random oversampling (exact copies) before the split
    Case("ho7-oversample-before-split-imbalanced", cfg("imbalanced", 5, None, _mlp_cfg("relu", 2), ADAM),
         {"data_leakage"}, {"class_imbalance"}, data="oversampled_imbalanced"),
    # Kapoor and Narayanan 2023: overlapping windows of one signal split at random
    Case("ho7-overlapping-windows-signal", cfg("mnist1d", 8, None, _mlp_cfg("relu", 2), ADAM), {"data_leakage"},
         set(), data="overlapping_windows"),
    # --- overfitting
    # Karpathy (overfit first, then regularise - here never regularised): a 128-unit GRU on 180 digits, 80 epochs
    Case("ho7-gru-overfit-digits-300", cfg("digits", 80, 300, {"name": "gru", "width": 128},
                                           {"name": "adam", "lr": 0.003}), {"overfitting"}, set()),
    # Zhang et al. 2017 (memorisation) / Humbatova et al. (noisy labels): 3 x 256 on 240 moons rows with 20% of
    # the labels flipped, 300 epochs: it memorises the flipped labels
    Case("ho7-mlp-memorise-noisy-moons", cfg("moons", 300, None, _mlp_cfg("relu", 3, 256),
                                             {"name": "adam", "lr": 0.003}),
         {"overfitting"}, set(), data="moons_label_noise_40_small"),
    # --- healthy: nothing above info
    # SGD with momentum 0.9 at 0.1 (the ResNet recipe), batches of 32
    Case("ho7-momentum-0.9-lr0.1-circles", cfg("circles", 15, None, _mlp_cfg("relu", 3),
                                               {"name": "momentum", "lr": 0.1, "momentum": 0.9}, data_batch=32)),
    # tiny data, a small model: 60 training rows, 16 units, batches of 8
    Case("ho7-tiny-blobs-100", cfg("blobs", 40, 100, _mlp_cfg("relu", 1, 16), {"name": "adam", "lr": 0.01},
                                   data_batch=8)),
    # batch size 1 on an easy set
    Case("ho7-batch-1-moons", cfg("moons", 6, 300, _mlp_cfg("relu", 2, 32), {"name": "sgd", "lr": 0.03},
                                  data_batch=1)),
    # 100 epochs on noise-free moons: it fits perfectly and validation follows
    Case("ho7-long-clean-moons", cfg("moons", 100, 1000, _mlp_cfg("relu", 3), ADAM, data_noise=0.0)),
    # AdamW, cosine schedule with 2 warmup epochs, a 2-D CNN
    Case("ho7-cnn-cosine-warmup-digits", cfg("digits", 12, None, _cnn_cfg("relu", 2, 32, kernel_size=3),
                                             {"name": "adamw", "lr": 0.003},
                                             schedule={"name": "cosine", "warmup_epochs": 2})),
    # dropout 0.5 on a wide MLP (Srivastava et al. 2014's rate)
    Case("ho7-dropout-0.5-wide-digits", cfg("digits", 20, None, _mlp_cfg("relu", 2, 512, dropout=0.5), ADAM)),
    # SMOTE on the training split only (the right place), an imbalanced set
    Case("ho7-smote-train-only-imbalanced", _with_data(cfg("imbalanced", 10, None, _mlp_cfg("relu", 2), ADAM),
                                                       imbalance={"method": "smote"})),
    _custom("ho7-resnet1d-bn-mnist1d", "resnet1d_bn_mnist1d", set()),
    _custom("ho7-adamw-param-groups-digits", "adamw_param_groups_digits", set()),
    _custom("ho7-bigru-digits", "bigru_digits", set()),
    _custom("ho7-sum-reduction-rate-scaled-moons", "sum_reduction_rate_scaled_moons", set()),
]
for case in HELD_OUT_7:
    _standardize_off(case.config)
