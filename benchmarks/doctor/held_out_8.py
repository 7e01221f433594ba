"""The eighth held-out set (issue 18): new instances of the faults set 7 found hard, and more real faults.

Written and committed before its first run (python benchmarks/doctor/run.py --held-out-8), by a writer who had
read the doctor's vocabulary (trainwell/doctor/findings.py), its public API (trainwell/doctor/__init__.py), the
API and usage parts of docs/doctor.md and the benchmark harness, and none of the rules, their thresholds, the
trigger columns of docs/doctor.md, the doctor's tests or the results of the earlier sets. Labels say what the
injected fault does by its mechanism, not what was seen (nothing here was trained before the commit); not to be
tuned on.

The first part repeats mechanisms of set 7 with other data, models, magnitudes or code paths, so that it measures
whether a fix generalises rather than whether it fits set 7: class-sorted data never shuffled (a 2-D CNN, SGD with
momentum), momentum too high (a CNN on minibatches, and full-batch logistic regression, where the heavy ball's
slowly damped oscillation is textbook), Adam and RMSprop rates too high on an LSTM and an Elman RNN, a rate typed
100x too high that ends in NaN (momentum MLP by config, plain SGD CNN by hand), deep tanh and sigmoid nets at
PyTorch's default init (by hand with SGD, by config with Adam), a residual 1-D CNN without normalisation and with
He-initialised branches, dropout written as a keep probability (p = 0.75 in a CNN, 0.9 in a two-layer LSTM),
12-bit ADC counts into a CNN, leakage through windows cut every step and through records duplicated across the
split, a wide MLP memorising noisy labels (30% redrawn at random), and (healthy) a sum-reduced loss with the rate
divided by the batch size.

Sources the faults are modelled on:

* Humbatova et al. 2020, "Taxonomy of real faults in deep learning systems" (ICSE): suboptimal learning rate and
  momentum, wrong dropout rate, wrong weight initialisation, missing preprocessing, wrong loss function, wrong
  activation of the last layer, wrong labels / misaligned training data, layers frozen or not trained by mistake
  (the optimizer given only some parameters), missing or misplaced zero_grad, model left in evaluation mode,
  training data overlapping the test data;
* Zhang et al. 2018, "An empirical study on TensorFlow program bugs" (ISSTA): confused hyperparameters (a
  keep_prob ported as a drop probability, a warmup length counted in rows instead of updates), a misplaced call in
  the training loop;
* Islam et al. 2019, "A comprehensive study on deep learning bug characteristics" (FSE): data bugs (unshuffled,
  class-sorted data; unscaled raw sensor counts; labels off by one row), API bugs (optimizer.zero_grad at the wrong
  place, model.eval() never undone, requires_grad left False);
* Karpathy 2019, "A recipe for training neural networks": shuffle, normalise the inputs, check the last layer and
  the loss, zero_grad, overfit-then-regularise (here never regularised, or the regulariser silently switched off);
* Zhang et al. 2021, AUTOTRAINER (ICSE): vanishing and exploding gradients, oscillating loss, slow convergence;
* Schoop et al. 2021, UMLAUT (CHI): static checks of the last layer and the loss (squashing output into a loss
  that expects logits, dropout rate);
* Polyak 1964 and Goh 2017 ("Why momentum really works", Distill): the heavy ball at momentum beta damps its
  oscillation by only sqrt(beta) per step;
* Glorot and Bengio 2010: PyTorch's default init (Var w = 1/(3 n_in)) shrinks a deep tanh or sigmoid net's signal
  and gradient layer by layer; Ioffe and Szegedy 2015: batch norm in eval mode with its initial running statistics
  is the identity, so the net it was meant to normalise is back;
* Zhang, Dauphin and Ma 2019 (Fixup), De and Smith 2020 (SkipInit), Goyal et al. 2017 (zero-initialised last
  layer of each residual branch): a residual net without normalisation needs its branches scaled down at init;
  He-initialised branches add their variance to the stream's at every block;
* Zhang et al. 2017 ("Understanding deep learning requires rethinking generalization"): a big net memorises
  random labels;
* leakage beyond the listed taxonomies: Kapoor and Narayanan 2023 ("Leakage and the reproducibility crisis":
  windows of one time series split at random), Dehghani et al. 2019 (overlapping sliding windows in activity
  recognition inflate scores), Barz and Denzler 2020 ("Do we train on test data?": duplicates across the split),
  Allamanis 2019 (the adverse effects of duplicated records);
* Goyal et al. 2017 ("Accurate, large minibatch SGD": the linear scaling rule with warmup), Loshchilov and Hutter
  2017/2019 (cosine schedules, AdamW), Saxe et al. 2014 (orthogonal init), Wu and He 2018 (group norm): the
  healthy runs.

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
from held_out_6 import Setup, StepSchedule, _flat, _mapped, _mlp, _resplit, _standardized, label_noise
from held_out_7 import SCALE_ALLOW, SHRUNK, _accuracy_loss, _cnn_cfg, _custom, _images, _mlp_cfg
from trainwell.data import Data, Split, load_data

SEED = 0
ADAM = {"name": "adam", "lr": 0.001}
OVERSHOOT = UNSTABLE | {"divergence"}  # steps that overshoot: the loss swings, grows, or the weights blow up
NAN_LR = NAN_ALLOW | {"divergence", "oscillating_loss"}  # on the way to a NaN the loss grows and swings
FROZEN = {"slow_convergence", "learning_rate_too_low"}  # weights that never move: a plateau, updates of 0


def _cnn2d(act: type[nn.Module] = nn.ReLU, dropout: float = 0.0, c1: int = 16, c2: int = 32) -> nn.Sequential:
    """Conv, pool, conv, pool, a hidden layer, 10 logits, for digits as (rows, 1, 8, 8)."""
    def drop() -> list[nn.Module]:
        return [nn.Dropout(dropout)] if dropout else []

    return nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), act(), nn.MaxPool2d(2), *drop(),
                         nn.Conv2d(c1, c2, 3, padding=1), act(), nn.MaxPool2d(2), nn.Flatten(), *drop(),
                         nn.Linear(c2 * 4, 128), act(), *drop(), nn.Linear(128, 10))


def _epoch_end(doctor: Any, model: nn.Module, d: Data, train_loss: float, train_acc: float) -> None:
    val_loss, val_acc = _accuracy_loss(model, d.val)
    doctor.end_epoch(train_loss=train_loss, val_loss=val_loss, train_acc=train_acc, val_acc=val_acc)


# ------------------------------------------------------------------ sick, hand-written loops

def _digits_cnn_loop(shuffle: bool) -> list[Any]:
    """Digits sorted by class (as a per-class export concatenates them), a 2-D CNN, SGD with momentum. The loop
    measures the whole training split at the end of each epoch."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    by_class = torch.argsort(d.train.y, stable=True)
    x_all, y_all = d.train.x[by_class], d.train.y[by_class]
    model = _cnn2d()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    batch, epochs = 32, 8
    per_epoch = math.ceil(len(y_all) / batch)
    g = torch.Generator().manual_seed(0)
    with Doctor(model, optimizer, total_steps=epochs * per_epoch, loss_fn=F.cross_entropy, n_classes=10) as doctor:
        for _ in range(epochs):
            order = torch.randperm(len(y_all), generator=g) if shuffle else torch.arange(len(y_all))
            model.train()
            for i in range(per_epoch):
                idx = order[i * batch:(i + 1) * batch]
                x, y = x_all[idx], y_all[idx]
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=x, targets=y)
                optimizer.step()
            train_loss, train_acc = _accuracy_loss(model, d.train)
            _epoch_end(doctor, model, d, train_loss, train_acc)
        return doctor.findings


def sorted_no_shuffle_cnn_digits() -> list[Any]:
    """Islam et al. 2019 / Karpathy (data not shuffled): the class-sorted rows walked in order every epoch: each
    stretch of ~3 batches holds one class, and every epoch ends after ~100 rows of class 9."""
    return _digits_cnn_loop(shuffle=False)


def shuffled_cnn_digits() -> list[Any]:
    """The healthy twin of the case above: the same sorted rows, shuffled every epoch."""
    return _digits_cnn_loop(shuffle=True)


def _mnist1d_mlp_loop(fault: str) -> list[Any]:
    """A hand-written loop on MNIST-1D, a 2 x 128 MLP, with the doctor's three lines where its docs put them."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 128, 2)
    if fault == "zero_grad_per_epoch":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    else:
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    batch, epochs = 64, 8
    per_epoch = math.ceil(len(d.train) / batch)
    g = torch.Generator().manual_seed(0)
    with Doctor(model, optimizer, total_steps=epochs * per_epoch, loss_fn=F.cross_entropy, n_classes=10) as doctor:
        for _ in range(epochs):
            order = torch.randperm(len(d.train), generator=g)
            total, correct = 0.0, 0
            if fault == "zero_grad_per_epoch":
                optimizer.zero_grad()  # the fault: one indentation level too far out, once per epoch
            for i in range(per_epoch):
                idx = order[i * batch:(i + 1) * batch]
                x, y = d.train.x[idx], d.train.y[idx]
                out = model(x)
                loss = F.cross_entropy(out, y)
                if fault != "zero_grad_per_epoch":
                    optimizer.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=x, targets=y)
                if fault == "zero_grad_before_step":
                    optimizer.zero_grad()  # the fault: the gradients are cleared after backward, before the step
                optimizer.step()
                total += float(loss) * len(y)
                correct += int((out.argmax(1) == y).sum())
            _epoch_end(doctor, model, d, total / len(d.train), correct / len(d.train))
        return doctor.findings


def zero_grad_per_epoch_mnist1d() -> list[Any]:
    """Humbatova et al. / Karpathy (misplaced zero_grad): optimizer.zero_grad() runs once per epoch, before the
    batch loop: each step's .grad is the sum of every gradient of the epoch so far (up to 30 of them), and plain
    SGD steps lr times that growing sum."""
    return _mnist1d_mlp_loop("zero_grad_per_epoch")


def zero_grad_before_step_mnist1d() -> list[Any]:
    """Islam et al. 2019 (wrong order of calls): optimizer.zero_grad() between loss.backward() and
    optimizer.step(): the gradients are None when Adam steps, so no weight ever changes."""
    return _mnist1d_mlp_loop("zero_grad_before_step")


def eval_mode_bn_sigmoid_mnist1d() -> list[Any]:
    """Islam et al. 2019 / Humbatova et al. (model left in evaluation mode): the user calls model.eval() to look at
    the loss before training and never calls model.train(). Batch norm in eval mode uses its running statistics,
    which never update in eval mode and start at mean 0, variance 1: every BatchNorm1d is the identity, and what
    trains is the plain six-layer sigmoid net at PyTorch's default init that batch norm was there to fix."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    layers: list[tuple[str, nn.Module]] = [("flat", nn.Flatten())]
    for i in range(6):
        layers.append((f"hidden{i}", nn.Sequential(nn.Linear(40 if i == 0 else 64, 64), nn.BatchNorm1d(64),
                                                   nn.Sigmoid())))
    model = nn.Sequential(OrderedDict([*layers, ("out", nn.Linear(64, 10))]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch, epochs = 128, 10
    per_epoch = math.ceil(len(d.train) / batch)
    g = torch.Generator().manual_seed(0)
    model.eval()  # "what is the loss before training?" - and never model.train() again: the fault
    with torch.no_grad():
        F.cross_entropy(model(d.val.x), d.val.y)
    with Doctor(model, optimizer, total_steps=epochs * per_epoch, loss_fn=F.cross_entropy, n_classes=10) as doctor:
        for _ in range(epochs):
            order = torch.randperm(len(d.train), generator=g)
            total, correct = 0.0, 0
            for i in range(per_epoch):
                idx = order[i * batch:(i + 1) * batch]
                x, y = d.train.x[idx], d.train.y[idx]
                out = model(x)
                loss = F.cross_entropy(out, y)
                optimizer.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=x, targets=y)
                optimizer.step()
                total += float(loss) * len(y)
                correct += int((out.argmax(1) == y).sum())
            _epoch_end(doctor, model, d, total / len(d.train), correct / len(d.train))
        return doctor.findings


# ------------------------------------------------------------------ sick, hand-built models

class _ElmanRNN(nn.Module):
    """MNIST-1D's 40 steps, one value each, through a tanh RNN; the last state to a linear head."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.rnn = nn.RNN(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(x.reshape(len(x), -1, 1))
        return self.head(h[-1])


def rmsprop_lr_high_rnn_mnist1d() -> Setup:
    """AUTOTRAINER / Humbatova et al. (suboptimal learning rate): RMSprop at 0.02 on an Elman RNN. Its first steps
    are ~lr / sqrt(1 - alpha) = 10 lr = 0.2 per weight, three times the recurrent weights' typical size (~0.06),
    and later steps stay ~lr per weight (a third of it)."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=2000))
    model = _ElmanRNN()
    return Setup(model, F.cross_entropy, torch.optim.RMSprop(model.parameters(), lr=0.02), d, 6, 64)


def sgd_lr10_leaky_cnn_digits() -> Setup:
    """Humbatova et al. (wrong learning rate): 1e1 typed for 1e-1, plain SGD on a 2-D CNN (leaky ReLU, so the
    units do not simply die): every layer's update scales with the others' weights, which grow together until the
    logits overflow."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = _cnn2d(nn.LeakyReLU)
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=10.0), d, 5, 64)


def tanh_8_default_init_digits() -> Setup:
    """Glorot and Bengio 2010: eight tanh layers of 256 at PyTorch's default init (uniform, Var w = 1/(3 n_in)):
    the signal's std shrinks ~1/sqrt(3) = 0.58x a layer (0.58^8 ~ 0.012 at the top), and the back-propagated
    gradient shrinks likewise towards the input."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    layers: list[tuple[str, nn.Module]] = [("flat", nn.Flatten())]
    for i in range(8):
        layers.append((f"hidden{i}", nn.Sequential(nn.Linear(64 if i == 0 else 256, 256), nn.Tanh())))
    model = nn.Sequential(OrderedDict([*layers, ("out", nn.Linear(256, 10))]))
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), d, 10, 64)


class _Block1d(nn.Module):
    def __init__(self, c: int, zero_last: bool) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(c, c, 3, padding=1), nn.Conv1d(c, c, 3, padding=1)
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        if zero_last:
            nn.init.zeros_(self.conv2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class _ResNet1dNoNorm(nn.Module):
    """A stem, ``blocks`` residual blocks h + conv(relu(conv(h))) with no normalisation, mean-pooled, a head."""

    def __init__(self, zero_last: bool, c: int = 16, blocks: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv1d(1, c, 5, padding=2)
        self.blocks = nn.Sequential(*(_Block1d(c, zero_last) for _ in range(blocks)))
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x.reshape(len(x), 1, -1)))
        return self.head(F.relu(h).mean(-1))


def resnet1d_no_norm_he_mnist1d() -> Setup:
    """Fixup (Zhang et al. 2019) / Humbatova et al. (wrong initialisation): a ResNet's batch norm removed, its He
    init kept: each branch's two He-initialised convolutions give it twice the stream's variance, so the stream's
    variance triples per block (3^10 ~ 6e4 at the head, its std ~240x) at step 0, and the gradient grows by the
    same factor towards the input."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _ResNet1dNoNorm(zero_last=False)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 6, 64)


def dropout_keep_0_75_cnn_digits() -> Setup:
    """Zhang et al. 2018 (confused hyperparameter) / Humbatova et al. (wrong dropout rate): a TF1 CNN's
    tf.nn.dropout(keep_prob=0.75) ported as nn.Dropout(0.75), three times: 75% of the units dropped, not 25%."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = _cnn2d(dropout=0.75)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 15, 64)


class _DropLSTM(nn.Module):
    """Digits' 8 rows as 8 steps: two LSTM layers with dropout between them and on the top layer's output."""

    def __init__(self, p: float, hidden: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, hidden, num_layers=2, dropout=p, batch_first=True)
        self.drop = nn.Dropout(p)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x.reshape(len(x), 8, 8))
        return self.head(self.drop(h[-1]))


def lstm_dropout_keep_0_9_digits() -> Setup:
    """Zhang et al. 2018 (confused hyperparameter): TF's DropoutWrapper(output_keep_prob=0.9) on each LSTM layer,
    ported as nn.LSTM(dropout=0.9) and nn.Dropout(0.9) on the output: 90% of the units dropped, not 10%."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _DropLSTM(0.9)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 3e-3), d, 10, 64)


def tanh_mse_codes_digits() -> Setup:
    """Humbatova et al. (wrong loss function / wrong last-layer activation): a tanh output fitted with MSE to +-1
    codes (an SVM-style target, ported from a regression script): the gradient at the logits is
    2 (t - code)(1 - t^2), which vanishes where a unit is confidently wrong (t near the wrong sign)."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _mlp(_flat(d), 10, 128, 2, head=[nn.Tanh()])

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, 2.0 * F.one_hot(y, 10).float() - 1.0)

    return Setup(model, loss, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), d, 15, 64)


def sigmoid_head_ce_cancer() -> Setup:
    """UMLAUT / Humbatova et al. (wrong activation of the last layer): a binary model's sigmoid output kept when it
    was given two outputs and nn.CrossEntropyLoss, which applies its own softmax: the loss sees logits confined to
    [0, 1], so p(right class) is at most e / (1 + e) = 0.73 (a floor of 0.31 under the loss) and its gradient is
    squeezed through the sigmoid's derivative."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("breast_cancer"))
    model = _mlp(_flat(d), 2, 64, 2, head=[nn.Sigmoid()])
    return Setup(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), 1e-3), d, 20, 32)


def frozen_body_spiral() -> Setup:
    """Humbatova et al. / Islam et al. (layers frozen by mistake): the body was frozen for a warm-up of the head
    (requires_grad_(False)) and the line that unfreezes it never runs; no pretrained weights were loaded, so the
    model is a linear head on 32 random ReLU features of the 2-D input, which cannot carve three spiral arms."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("spiral"))
    model = nn.Sequential(OrderedDict(body=nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU()),
                                      head=nn.Linear(32, 3)))
    model.body.requires_grad_(False)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 3e-3), d, 30)


def warmup_counted_in_rows_digits() -> Setup:
    """Zhang et al. 2018 (confused hyperparameter): a linear warmup of 5 epochs computed as 5 * len(dataset)
    (rows) instead of 5 * len(loader) (batches): 5745 warmup steps in a run of 360, so Adam's rate never exceeds
    6% of its 1e-3 and averages 3%."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _mlp(_flat(d), 10, 128, 2)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    warmup = 5 * len(d.train)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    return Setup(model, F.cross_entropy, optimizer, d, 10, 32, [StepSchedule(sched)])


# ------------------------------------------------------------------ problems in the data

def activity_windows(n_per_class: int = 600, length: int = 32) -> Data:
    """An accelerometer-like signal per activity (a fundamental of 30 to 70 steps, a harmonic, a slow drift and a
    little noise), cut into windows of ``length`` steps starting at every step, labelled by activity, then split
    at random: a validation or test window's neighbours one step earlier and later, near-copies of it on a signal
    this smooth, are in training (Kapoor and Narayanan 2023; Dehghani et al. 2019)."""
    rng = np.random.default_rng(17)
    activities = [(48.0, 0.5), (30.0, 0.8), (70.0, 0.3), (40.0, 1.2)]  # (period, share of the second harmonic)
    xs, ys = [], []
    for label, (period, harmonic) in enumerate(activities):
        n = n_per_class + length
        t = np.arange(n)
        signal = (np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
                  + 0.5 * harmonic * np.sin(4 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
                  + 0.3 * np.sin(2 * np.pi * t / 500 + rng.uniform(0, 2 * np.pi))
                  + 0.05 * rng.standard_normal(n))
        xs.append(np.stack([signal[i:i + length] for i in range(n_per_class)]))
        ys.append(np.full(n_per_class, label))
    x = torch.as_tensor(np.concatenate(xs), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate(ys), dtype=torch.int64)
    template = load_data("mnist1d", n_samples=100)  # a signal set: its kind
    d = Data("mnist1d", template.kind, Split(x, y), Split(x[:1], y[:1]), Split(x[:1], y[:1]), len(activities),
             x.mean(0), x.std(0))
    return _resplit(d, x, y, seed=8)


def duplicated_records(name: str = "digits", share: float = 0.3) -> Data:
    """Two exports of one table merged, which overlap in 30% of the records: those rows are in the data twice,
    then the split: about half of the duplicated rows have their copy in another split (Barz and Denzler 2020)."""
    d = load_data(name)
    x = torch.cat([d.train.x, d.val.x, d.test.x])
    y = torch.cat([d.train.y, d.val.y, d.test.y])
    pick = torch.as_tensor(np.random.default_rng(19).choice(len(x), int(share * len(x)), replace=False))
    return _resplit(d, torch.cat([x, x[pick]]), torch.cat([y, y[pick]]), seed=6)


def labels_shifted(name: str = "mnist1d", n: int = 3000) -> Data:
    """Islam et al. 2019 / Humbatova et al. (misaligned labels): the training labels read from a separate file
    whose header line was taken as a row: every row gets its neighbour's label (9% of them right, chance),
    validation and test are aligned."""
    d = load_data(name, n_samples=n)
    train = Split(d.train.x, torch.roll(d.train.y, 1))
    return Data(d.name, d.kind, train, d.val, d.test, d.n_classes, d.mean, d.std)


DATA_8: dict[str, Callable[[], Data]] = {
    # MNIST-1D as a 12-bit ADC reads it: counts around 2048, 400 counts per unit
    "mnist1d_adc": lambda: _mapped("mnist1d", lambda x: torch.clamp(torch.round(2048.0 + 400.0 * x), 0, 4095), 3000),
    "activity_windows": activity_windows,
    "duplicated_digits": duplicated_records,
    "digits_label_noise_30": lambda: label_noise("digits", 0.3),
    "mnist1d_labels_shifted": labels_shifted,
}
DATA.update(DATA_8)


# ------------------------------------------------------------------ healthy, by hand

def sum_reduction_rate_scaled_cnn_digits() -> Setup:
    """reduction='sum' with the rate divided by the batch size: the same steps as the mean at 0.05 (momentum 0.9)."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = _cnn2d()
    batch = 32
    return Setup(model, nn.CrossEntropyLoss(reduction="sum"),
                 torch.optim.SGD(model.parameters(), lr=0.05 / batch, momentum=0.9), d, 12, batch)


def resnet1d_zero_init_no_norm_mnist1d() -> Setup:
    """The healthy twin of the un-normalised ResNet: each branch's last convolution starts at zero (Goyal et al.
    2017, SkipInit, the core of Fixup), so every block is the identity at step 0 and the stream keeps its
    variance."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _ResNet1dNoNorm(zero_last=True)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 8, 64)


CUSTOM_8: dict[str, Callable[[], Any]] = {f.__name__: f for f in (
    sorted_no_shuffle_cnn_digits, shuffled_cnn_digits, zero_grad_per_epoch_mnist1d, zero_grad_before_step_mnist1d,
    eval_mode_bn_sigmoid_mnist1d, rmsprop_lr_high_rnn_mnist1d, sgd_lr10_leaky_cnn_digits, tanh_8_default_init_digits,
    resnet1d_no_norm_he_mnist1d, dropout_keep_0_75_cnn_digits, lstm_dropout_keep_0_9_digits, tanh_mse_codes_digits,
    sigmoid_head_ce_cancer, frozen_body_spiral, warmup_counted_in_rows_digits, sum_reduction_rate_scaled_cnn_digits,
    resnet1d_zero_init_no_norm_mnist1d)}


# ------------------------------------------------------------------ the cases

HELD_OUT_8: list[Case] = [
    # --- the data order and the optimisation loop
    # Islam et al. / Karpathy: class-sorted digits, never shuffled, into a CNN with momentum: each epoch ends on 9s
    _custom("ho8-sorted-no-shuffle-cnn-digits", "sorted_no_shuffle_cnn_digits", {"underfitting"},
            {"oscillating_loss", "slow_convergence"}),
    # Humbatova et al. (suboptimal momentum): 0.99 at a rate chosen for 0.9, minibatches of 32: the heavy ball's
    # oscillation is damped by only sqrt(0.99) = 0.995 a step, so the loss swings over epochs
    Case("ho8-momentum-0.99-cnn-digits", cfg("digits", 15, None, _cnn_cfg("relu", 2, 16, kernel_size=3),
                                             {"name": "momentum", "lr": 0.05, "momentum": 0.99}, data_batch=32),
         {"oscillating_loss"}, OVERSHOOT),
    # Polyak 1964 / Goh 2017: full-batch logistic regression with momentum 0.99: every direction underdamped, the
    # loss rises and falls with periods of a few to tens of updates (= epochs here), its swing decaying 0.995 an update
    Case("ho8-heavy-ball-0.99-logistic-cancer", cfg("breast_cancer", 80, None, {"name": "logistic"},
                                                    {"name": "momentum", "lr": 0.5, "momentum": 0.99},
                                                    data_batch=100000),
         {"oscillating_loss"}, OVERSHOOT),
    # AUTOTRAINER: Adam at 0.1 on an LSTM: steps of ~0.1 per weight against weights of ~0.09; gates saturate
    Case("ho8-adam-lr0.1-lstm-digits", cfg("digits", 10, None, {"name": "lstm", "width": 32},
                                           {"name": "adam", "lr": 0.1}),
         {"learning_rate_too_high"}, OVERSHOOT | {"saturation", "vanishing_gradients"}),
    # AUTOTRAINER / Humbatova et al.: RMSprop at 0.02 on an Elman RNN (first steps 10x lr)
    _custom("ho8-rmsprop-lr0.02-rnn-mnist1d", "rmsprop_lr_high_rnn_mnist1d", {"learning_rate_too_high"},
            OVERSHOOT | {"saturation", "vanishing_gradients"}),
    # Humbatova et al. (wrong learning rate): 5.0 typed for 0.05, momentum 0.9 (steps ~50x the gradient): NaN
    Case("ho8-momentum-lr5-leaky-mnist1d", cfg("mnist1d", 5, 3000, _mlp_cfg("leaky_relu", 3, 128),
                                               {"name": "momentum", "lr": 5.0, "momentum": 0.9}),
         {"nan_loss"}, NAN_LR, cause="learning_rate_too_high"),
    # Humbatova et al.: 10 typed for 0.1, plain SGD on a leaky-ReLU CNN, by hand: NaN
    _custom("ho8-sgd-lr10-leaky-cnn-digits", "sgd_lr10_leaky_cnn_digits", {"nan_loss"}, NAN_LR,
            cause="learning_rate_too_high"),
    # Zhang et al. 2018 / Islam et al.: zero_grad once per epoch: the gradient the step sees grows step by step
    _custom("ho8-zero-grad-per-epoch-mnist1d", "zero_grad_per_epoch_mnist1d", {"exploding_gradients"}, OVERSHOOT),
    # Islam et al.: zero_grad between backward and step: nothing is ever updated
    _custom("ho8-zero-grad-before-step-mnist1d", "zero_grad_before_step_mnist1d", {"underfitting"}, FROZEN),
    # Zhang et al. 2018: warmup length in rows instead of updates: the rate stays at a few % of its value
    _custom("ho8-warmup-counted-in-rows-digits", "warmup_counted_in_rows_digits", {"learning_rate_too_low"}, SHRUNK),
    # --- initialisation and structure
    # Glorot and Bengio 2010: eight tanh layers at PyTorch's default init, SGD with momentum, by hand
    _custom("ho8-tanh-8-default-init-digits", "tanh_8_default_init_digits",
            {"vanishing_gradients", "bad_initialisation"}, VANISH_ALLOW, layer="hidden0", main="vanishing_gradients"),
    # Glorot and Bengio 2010: eight sigmoid layers at the default init under Adam (which rescales each weight's
    # step, not the gradient's decay with depth)
    Case("ho8-sigmoid-8-adam-spiral", cfg("spiral", 20, None, _mlp_cfg("sigmoid", 8), ADAM),
         {"vanishing_gradients"}, VANISH_ALLOW, layer="net.hidden0"),
    # Ioffe and Szegedy 2015 / Islam et al.: model.eval() never undone: batch norm is the identity, the plain
    # six-layer sigmoid net trains
    _custom("ho8-eval-mode-bn-sigmoid-mnist1d", "eval_mode_bn_sigmoid_mnist1d", {"vanishing_gradients"},
            VANISH_ALLOW, layer="hidden0"),
    # Fixup: ten un-normalised residual conv blocks with He-initialised branches: variance x3 a block
    _custom("ho8-resnet1d-no-norm-he-mnist1d", "resnet1d_no_norm_he_mnist1d",
            {"exploding_gradients", "bad_initialisation"},
            NAN_ALLOW | {"nan_loss", "divergence", "oscillating_loss", "slow_convergence", "underfitting",
                         "learning_rate_too_high"}),
    # Zhang et al. 2018: keep_prob 0.75 ported as p = 0.75 in a CNN
    _custom("ho8-dropout-keep-0.75-cnn-digits", "dropout_keep_0_75_cnn_digits", {"dropout_too_high"}, SHRUNK),
    # Zhang et al. 2018: output_keep_prob 0.9 ported as nn.LSTM(dropout=0.9) and nn.Dropout(0.9): the batch
    # losses are those of a different 10% of the net each step
    _custom("ho8-lstm-dropout-keep-0.9-digits", "lstm_dropout_keep_0_9_digits", {"dropout_too_high"},
            SHRUNK | {"oscillating_loss"}),
    # Humbatova et al.: layers frozen by mistake (requires_grad False, never undone): random features and a head
    _custom("ho8-frozen-body-spiral", "frozen_body_spiral", {"underfitting"}, FROZEN),
    # --- the loss and the last layer
    # Humbatova et al.: tanh output and MSE against +-1 codes: the gradient vanishes for confident mistakes
    _custom("ho8-tanh-mse-codes-digits", "tanh_mse_codes_digits", {"small_output_gradient"}, SHRUNK | {"saturation"}),
    # UMLAUT / Humbatova et al.: a sigmoid output into CrossEntropyLoss: logits confined to [0, 1]
    _custom("ho8-sigmoid-head-ce-cancer", "sigmoid_head_ce_cancer", {"double_softmax"},
            SHRUNK | {"small_output_gradient"}),
    # --- the data
    # Islam et al. / Karpathy (inputs not normalised): 12-bit ADC counts (~2048 +- 400) into a 1-D CNN
    Case("ho8-adc-counts-cnn-mnist1d", cfg("mnist1d", 10, None, _cnn_cfg("relu", 3, 32), ADAM,
                                           data_standardize=False),
         {"unscaled_inputs"}, SCALE_ALLOW, data="mnist1d_adc"),
    # Islam et al. / Humbatova et al.: the training labels shifted by one row: labels independent of the inputs
    Case("ho8-labels-shifted-mnist1d", cfg("mnist1d", 10, None, _mlp_cfg("relu", 3, 128), ADAM),
         {"underfitting"}, {"slow_convergence", "overfitting"}, data="mnist1d_labels_shifted"),
    # Kapoor and Narayanan 2023 / Dehghani et al. 2019: windows cut at every step, split at random, into a 1-D CNN
    Case("ho8-stride-1-windows-cnn", cfg("mnist1d", 6, None, _cnn_cfg("relu", 2, 16), ADAM), {"data_leakage"},
         set(), data="activity_windows"),
    # Barz and Denzler 2020: 30% of the records in the data twice, then the split
    Case("ho8-duplicated-records-digits", cfg("digits", 5, None, _mlp_cfg("relu", 2, 128), ADAM), {"data_leakage"},
         set(), data="duplicated_digits"),
    # --- overfitting
    # Zhang et al. 2017 (memorisation): 2 x 512 on 1149 digits, 30% of the labels redrawn at random (~27% wrong),
    # 100 epochs
    Case("ho8-mlp-memorise-noisy-digits", cfg("digits", 100, None, _mlp_cfg("relu", 2, 512),
                                              {"name": "adam", "lr": 0.003}, data_batch=64),
         {"overfitting"}, set(), data="digits_label_noise_30"),
    # --- healthy: nothing above info
    # the sorted digits, shuffled every epoch: the twin of the first case
    _custom("ho8-shuffled-cnn-digits", "shuffled_cnn_digits", set()),
    _custom("ho8-sum-reduction-rate-scaled-cnn-digits", "sum_reduction_rate_scaled_cnn_digits", set()),
    # an un-normalised ResNet done right (zero-initialised last layer of each branch): the twin of the Fixup case
    _custom("ho8-resnet1d-zero-init-no-norm-mnist1d", "resnet1d_zero_init_no_norm_mnist1d", set()),
    # Adam with a step decay every 4 epochs, a 1-D CNN
    Case("ho8-cnn-step-decay-mnist1d", cfg("mnist1d", 12, 3000, _cnn_cfg("relu", 3, 32), ADAM, data_batch=64,
                                           schedule={"name": "step", "step_size": 4, "gamma": 0.3})),
    # an LSTM with gradient clipping at 1 (the usual recurrent-net recipe), batches of 32
    Case("ho8-lstm-clip-adam-digits", cfg("digits", 12, None, {"name": "lstm", "width": 64},
                                          {"name": "adam", "lr": 0.003}, data_batch=32, clip={"max_norm": 1.0})),
    # dropout 0.3 and decoupled weight decay on a small tabular set
    Case("ho8-dropout-0.3-adamw-cancer", cfg("breast_cancer", 30, None, _mlp_cfg("relu", 2, 128, dropout=0.3),
                                             {"name": "adamw", "lr": 0.001}, reg={"weight_decay": 0.01})),
    # Adam with reduce-on-plateau
    Case("ho8-plateau-schedule-spiral", cfg("spiral", 40, None, _mlp_cfg("relu", 3),
                                            {"name": "adam", "lr": 0.003},
                                            schedule={"name": "plateau", "patience": 3, "factor": 0.5})),
    # Saxe et al. 2014: five tanh layers, orthogonal init with tanh's gain 5/3
    Case("ho8-tanh-orthogonal-circles", cfg("circles", 30, None, _mlp_cfg("tanh", 5, init="orthogonal",
                                                                          init_options={"gain": 5.0 / 3.0}),
                                            {"name": "adam", "lr": 0.003}, data_batch=64)),
    # Goyal et al. 2017: batches of 512, the rate scaled up with them, 5 warmup epochs, then cosine
    Case("ho8-large-batch-warmup-moons", cfg("moons", 60, 2000, _mlp_cfg("relu", 2),
                                             {"name": "momentum", "lr": 0.2, "momentum": 0.9}, data_batch=512,
                                             schedule={"name": "cosine", "warmup_epochs": 5})),
    # Wu and He 2018: group norm (8 groups) in a 1-D CNN, AdamW, cosine
    Case("ho8-cnn-groupnorm-cosine-mnist1d", cfg("mnist1d", 10, 3000, _cnn_cfg("relu", 3, 32, norm="group",
                                                                               norm_options={"groups": 8}),
                                                 {"name": "adamw", "lr": 0.002}, data_batch=64,
                                                 schedule={"name": "cosine"})),
    # layer norm, Nesterov momentum and a little weight decay on a wide MLP
    Case("ho8-layernorm-nesterov-digits", cfg("digits", 15, None, _mlp_cfg("relu", 2, 256, norm="layer"),
                                              {"name": "nesterov", "lr": 0.05}, data_batch=64,
                                              reg={"weight_decay": 5e-4})),
]
for case in HELD_OUT_8:
    _standardize_off(case.config)
