"""The ninth held-out set (issue 18): new instances of the faults of sets 7 and 8, and healthy runs done right.

Written and committed before its first run (python benchmarks/doctor/run.py --held-out-9), by a writer who had
read the doctor's vocabulary (trainwell/doctor/findings.py, with its new ``unshuffled_batches``), its public API
(trainwell/doctor/__init__.py), the API and usage parts of docs/doctor.md and the benchmark harness, and none of
the rules, their thresholds, the trigger columns of docs/doctor.md, the doctor's tests or the results of the
earlier sets. Labels say what the injected fault does by its mechanism, not what was seen (nothing here was
trained before the commit); not to be tuned on.

Every sick case repeats a mechanism of sets 7 and 8 with other data, another model, another magnitude or another
code path: Adagrad's first step (lr per weight, whatever the gradient) on a GRU and Adam at 0.05 on a 2-D CNN;
Adam's betas swapped (beta1 = 0.999: momentum averaged over a thousand steps) and plain momentum 0.995; a
zero_grad called on a stale copy of the model; a LambdaLR whose lambda returns the rate instead of a factor, and
a warmup counted in epochs that was meant in steps (by config); eight tanh convolutions at PyTorch's default init;
a residual MLP built by config with He init and no normalisation; dropout 0.8 by config and Dropout2d(0.8) by
hand; an optimizer given only the head; inputs shuffled without their labels; softmax into MSE, sigmoid into
cross-entropy; signals in microvolts; class-sorted rows through DataLoader(shuffle=False) and through a GRU;
validation rows merged into training, windows of a resonant signal every 3 steps; a wide MLP memorising noisy
labels on a small tabular set; and three NaNs of unsafe operations (log of a ReLU-normalised probability that is
exactly 0, the gradient of sqrt at 0 on a pairwise distance's diagonal, a batch standardisation without epsilon
meeting a last batch of one row).

Sources the faults are modelled on:

* Humbatova et al. 2020, "Taxonomy of real faults in deep learning systems" (ICSE): suboptimal learning rate and
  momentum, wrong optimiser hyperparameters, wrong dropout rate, wrong weight initialisation, missing
  preprocessing, wrong loss function, wrong activation of the last layer, wrong labels / misaligned training
  data, layers not trained by mistake (the optimizer given only some parameters), missing zero_grad, training
  data overlapping the validation data;
* Zhang et al. 2018, "An empirical study on TensorFlow program bugs" (ISSTA): confused hyperparameters (a
  keep_prob ported as a drop probability, a warmup length in the wrong unit), NaN from unsafe operations (log of
  0, division by a zero std, sqrt at 0);
* Islam et al. 2019, "A comprehensive study on deep learning bug characteristics" (FSE): data bugs (unshuffled,
  class-sorted data; unscaled inputs; inputs and labels shuffled apart), API bugs (a scheduler's lambda misread,
  zero_grad on the wrong object, the optimizer built on the wrong parameters);
* Karpathy 2019, "A recipe for training neural networks": shuffle, normalise the inputs, check the last layer and
  the loss, zero_grad, overfit-then-regularise;
* Zhang et al. 2021, AUTOTRAINER (ICSE): vanishing and exploding gradients, oscillating loss, slow convergence;
* Schoop et al. 2021, UMLAUT (CHI): static checks of the last layer and the loss, dropout rate;
* Wardat et al. 2022, DeepDiagnosis (ICSE): numerical errors (NaN from log, sqrt and division), a learning rate
  too high or too low, unchanged weights, saturated activations, and their localisation to a layer;
* Polyak 1964 and Goh 2017 ("Why momentum really works", Distill): the heavy ball at beta damps its oscillation by
  only sqrt(beta) a step; Kingma and Ba 2015: Adam's beta1 is the momentum, beta2 the second moment's decay;
  Duchi et al. 2011: Adagrad's first step is lr times the gradient's sign;
* Glorot and Bengio 2010: PyTorch's default init (Var w = 1/(3 fan_in)) shrinks a deep tanh net's signal and
  gradient layer by layer;
* Zhang, Dauphin and Ma 2019 (Fixup), De and Smith 2020 (SkipInit), Goyal et al. 2017 (zero-initialised last
  layer of each residual branch): a residual net without normalisation needs its branches scaled down at init;
* Zhang et al. 2017 ("Understanding deep learning requires rethinking generalization"): a big net memorises
  random labels;
* leakage: Kapoor and Narayanan 2023 ("Leakage and the reproducibility crisis": windows of one series split at
  random, tuning on data the model was trained on), Dehghani et al. 2019 (overlapping sliding windows), Barz and
  Denzler 2020 and Allamanis 2019 (the same records on both sides of the split);
* Schroff et al. 2015 / Hermans et al. 2017 (triplet and centre losses on pairwise Euclidean distances: the
  gradient of sqrt at the diagonal's 0 is NaN without an epsilon);
* Goyal et al. 2017 (warmup), Loshchilov and Hutter 2017 (cosine), Ioffe and Szegedy 2015 (batch norm), Smith
  2018 and Keskar et al. 2017 (small and full batches): the healthy runs.

A case is a trainwell config (cases.cfg), or a ``custom`` builder below: a plain torch model, loss and optimizer
trained by :class:`trainwell.loop.Trainer` with the doctor's callback (``Setup`` of held_out_6), or a hand-written
loop with :class:`trainwell.doctor.Doctor` that returns its findings.
"""

from __future__ import annotations

import copy
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
from trainwell.loop import Callback

SEED = 0
ADAM = {"name": "adam", "lr": 0.001}
OVERSHOOT = UNSTABLE | {"divergence"}  # steps that overshoot: the loss swings, grows, or the weights blow up
FROZEN = {"slow_convergence", "learning_rate_too_low"}  # weights that never move: a plateau, updates of 0
SORTED = {"underfitting", "oscillating_loss", "slow_convergence"}  # each epoch ends tuned to its last classes


class EpochSchedule(Callback):
    """Steps a torch scheduler once per epoch (as its docs show)."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def on_epoch_end(self, trainer) -> None:
        self.scheduler.step()


def _cnn2d_9(act: type[nn.Module] = nn.ReLU, head: list[nn.Module] | None = None,
             drop2d: float = 0.0) -> nn.Sequential:
    """Conv, pool, conv, pool, a hidden layer, 10 outputs, for digits as (rows, 1, 8, 8)."""
    def drop() -> list[nn.Module]:
        return [nn.Dropout2d(drop2d)] if drop2d else []

    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), act(), nn.MaxPool2d(2), *drop(),
                         nn.Conv2d(32, 32, 3, padding=1), act(), nn.MaxPool2d(2), *drop(), nn.Flatten(),
                         nn.Linear(32 * 4, 64), act(), nn.Linear(64, 10), *(head or []))


def _cnn1d_9(head: list[nn.Module] | None = None) -> nn.Sequential:
    """MNIST-1D's 40 steps: three ReLU convolutions (one of stride 2), mean-pooled, a linear head."""
    return nn.Sequential(nn.Unflatten(1, (1, 40)), nn.Conv1d(1, 32, 5, padding=2), nn.ReLU(),
                         nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(), nn.Conv1d(32, 32, 5, padding=2),
                         nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 10), *(head or []))


def _end_epoch(doctor: Any, model: nn.Module, d: Data) -> None:
    """The loop measures the whole training and validation splits at the end of each epoch."""
    train_loss, train_acc = _accuracy_loss(model, d.train)
    val_loss, val_acc = _accuracy_loss(model, d.val)
    doctor.end_epoch(train_loss=train_loss, val_loss=val_loss, train_acc=train_acc, val_acc=val_acc)


# ------------------------------------------------------------------ sick, hand-written loops

def stale_copy_zero_grad_spiral() -> list[Any]:
    """Islam et al. 2019 / Karpathy (zero_grad on the wrong object): a sweep script deep-copies a base model for
    each run and builds the optimizer on the copy, but the loop still calls base.zero_grad(): the trained copy's
    .grad is never cleared, so each step's gradient is the sum of every gradient since the start, and SGD with
    momentum 0.9 steps lr times a running sum of that growing sum."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("spiral"))
    base = _mlp(2, 3, 64, 3)
    model = copy.deepcopy(base)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch, epochs = 32, 10
    per_epoch = math.ceil(len(d.train) / batch)
    g = torch.Generator().manual_seed(0)
    with Doctor(model, optimizer, total_steps=epochs * per_epoch, loss_fn=F.cross_entropy, n_classes=3) as doctor:
        for _ in range(epochs):
            order = torch.randperm(len(d.train), generator=g)
            model.train()
            for i in range(per_epoch):
                idx = order[i * batch:(i + 1) * batch]
                x, y = d.train.x[idx], d.train.y[idx]
                loss = F.cross_entropy(model(x), y)
                base.zero_grad()  # the fault: the base model's gradients (always None), not the trained copy's
                loss.backward()
                doctor.observe(loss, inputs=x, targets=y)
                optimizer.step()
            _end_epoch(doctor, model, d)
        return doctor.findings


def _spiral_loader_loop(shuffle: bool) -> list[Any]:
    """Spiral rows sorted by arm (a per-class export concatenated), a torch DataLoader, an MLP, Adam."""
    from torch.utils.data import DataLoader, TensorDataset

    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("spiral"))
    by_class = torch.argsort(d.train.y, stable=True)
    loader = DataLoader(TensorDataset(d.train.x[by_class], d.train.y[by_class]), batch_size=32, shuffle=shuffle,
                        generator=torch.Generator().manual_seed(0))
    model = _mlp(2, 3, 64, 3)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    epochs = 10
    with Doctor(model, optimizer, total_steps=epochs * len(loader), loss_fn=F.cross_entropy,
                n_classes=3) as doctor:
        for _ in range(epochs):
            model.train()
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=x, targets=y)
                optimizer.step()
            _end_epoch(doctor, model, d)
        return doctor.findings


def loader_unshuffled_sorted_spiral() -> list[Any]:
    """Islam et al. 2019 / Karpathy (data not shuffled): DataLoader(shuffle=False), its default, on rows sorted by
    arm: ten batches of arm 0, then ten of arm 1, then ten of arm 2, every epoch: each stretch of updates pulls
    the model towards one arm and each epoch ends tuned to the last."""
    return _spiral_loader_loop(shuffle=False)


def loader_shuffled_sorted_spiral() -> list[Any]:
    """The healthy twin of the case above: the same sorted rows, DataLoader(shuffle=True)."""
    return _spiral_loader_loop(shuffle=True)


class _GRUDigits(nn.Module):
    """Digits' 8 rows as 8 steps of 8 pixels through a GRU; the last state to a linear head."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.gru = nn.GRU(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x.reshape(len(x), 8, 8))
        return self.head(h[-1])


def sorted_no_shuffle_gru_digits() -> list[Any]:
    """Islam et al. 2019 (unshuffled data): digits sorted by class, walked in order by a GRU with RMSprop: each
    class fills ~3.6 batches of 32 in a row, and every epoch ends on ~115 rows of 9s."""
    from trainwell.doctor import Doctor

    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    by_class = torch.argsort(d.train.y, stable=True)
    x_all, y_all = d.train.x[by_class], d.train.y[by_class]
    model = _GRUDigits()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    batch, epochs = 32, 6
    per_epoch = math.ceil(len(y_all) / batch)
    with Doctor(model, optimizer, total_steps=epochs * per_epoch, loss_fn=F.cross_entropy, n_classes=10) as doctor:
        for _ in range(epochs):
            model.train()
            for i in range(per_epoch):
                x, y = x_all[i * batch:(i + 1) * batch], y_all[i * batch:(i + 1) * batch]
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=x, targets=y)
                optimizer.step()
            _end_epoch(doctor, model, d)
        return doctor.findings


# ------------------------------------------------------------------ sick, hand-built models

def adam_lr_0_05_cnn_digits() -> Setup:
    """AUTOTRAINER / Humbatova et al. (suboptimal learning rate): Adam at 0.05 on a 2-D CNN: each step moves every
    weight by up to ~0.05, the size of the second convolution's and the hidden layer's weights (std ~0.05) and a
    quarter of the first's (~0.19)."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = _cnn2d_9()
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), lr=0.05), d, 8, 64)


def adam_betas_swapped_mnist1d() -> Setup:
    """Humbatova et al. (wrong optimiser hyperparameters) / Kingma and Ba 2015: Adam(betas=(0.999, 0.9)), the two
    decay rates swapped: the first moment, the momentum, averages ~1000 steps of gradients (a heavy ball with
    beta 0.999, which keeps pushing in directions the loss has long turned in), while the second moment that
    scales the step forgets after ~10: the steps overshoot and swing."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 128, 2)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.999, 0.9)), d,
                 15, 32)


def lambdalr_returns_rate_mnist1d() -> Setup:
    """Islam et al. 2019 (API misuse): LambdaLR(optimizer, lambda epoch: 1e-3 * 0.9 ** epoch) - the lambda written
    as the rate, but LambdaLR multiplies the optimizer's rate by it: Adam at 1e-3 runs at 1e-6 from the first
    step, decaying from there."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 128, 2)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1e-3 * 0.9 ** epoch)
    return Setup(model, F.cross_entropy, optimizer, d, 10, 64, [EpochSchedule(sched)])


def lambdalr_factor_mnist1d() -> Setup:
    """The healthy twin: LambdaLR(optimizer, lambda epoch: 0.9 ** epoch), a factor, as LambdaLR expects."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 128, 2)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.9 ** epoch)
    return Setup(model, F.cross_entropy, optimizer, d, 10, 64, [EpochSchedule(sched)])


def _tanh_convs(init: str) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = [("unflat", nn.Unflatten(1, (1, 40)))]
    for i in range(8):
        conv = nn.Conv1d(1 if i == 0 else 32, 32, 5, padding=2)
        if init == "xavier":
            nn.init.xavier_uniform_(conv.weight, gain=5.0 / 3.0)
            nn.init.zeros_(conv.bias)
        layers.append((f"conv{i}", nn.Sequential(conv, nn.Tanh())))
    return nn.Sequential(OrderedDict([*layers, ("pool", nn.AdaptiveAvgPool1d(1)), ("flat", nn.Flatten()),
                                      ("out", nn.Linear(32, 10))]))


def tanh_conv1d_8_default_init_mnist1d() -> Setup:
    """Glorot and Bengio 2010: eight tanh convolutions (32 channels, kernel 5) at PyTorch's default init, uniform
    with Var w = 1/(3 fan_in): each layer multiplies the signal's variance by ~1/3 (its std by ~0.58, until the
    default biases hold it near 0.06, 8x below the first layer's), and the back-propagated gradient's by the same
    ~1/3 a layer towards the input (~0.02x in std over seven layers); SGD with momentum."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _tanh_convs("default")
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), d, 10, 64)


def tanh_conv1d_8_xavier_mnist1d() -> Setup:
    """The same eight tanh convolutions with Xavier init and tanh's gain 5/3 (Glorot and Bengio 2010), Adam."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _tanh_convs("xavier")
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 10, 64)


def dropout2d_keep_0_8_cnn_digits() -> Setup:
    """Zhang et al. 2018 (confused hyperparameter) / Humbatova et al. (wrong dropout rate): a channel dropout
    written with keep_prob = 0.8 ported as nn.Dropout2d(0.8) after both convolution blocks: 80% of the feature maps
    are zeroed at every step, not 20%, and the rest scaled by 5."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = _cnn2d_9(drop2d=0.8)
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 12, 64)


class _BodyHead(nn.Module):
    def __init__(self, n_in: int, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                  nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.flatten(1)))


def optimizer_head_only_mnist1d() -> Setup:
    """Humbatova et al. / Islam et al. (layers not trained by mistake): a fine-tuning script reused to train from
    scratch keeps torch.optim.Adam(model.head.parameters()): the three-layer body is never updated (no pretrained
    weights were loaded), so the model is a linear classifier on 64 random ReLU features of the signal - less than
    logistic regression on the raw signal, which reaches ~32% on MNIST-1D (Greydanus 2020) against ~70% for a
    trained MLP."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _BodyHead(_flat(d))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.head.parameters(), 1e-3), d, 10, 64)


def softmax_mse_cnn_digits() -> Setup:
    """Humbatova et al. (wrong loss function): a softmax output fitted with MSE to one-hot targets: the gradient at
    the logits goes through the softmax's Jacobian, p_k (delta_jk - p_j), which vanishes where the model is
    confidently wrong (p_y near 0), and MSE's own gradient is bounded by 2 / 10 per class."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = _cnn2d_9(head=[nn.Softmax(dim=1)])

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, F.one_hot(y, 10).float())

    return Setup(model, loss, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), d, 12, 64)


def sigmoid_head_ce_cnn_mnist1d() -> Setup:
    """UMLAUT / Humbatova et al. (wrong activation of the last layer): a multi-label head's sigmoid kept on a
    10-class 1-D CNN trained with F.cross_entropy, which applies its own softmax: the logits it sees are confined
    to [0, 1], so p(right class) is at most e / (e + 9) = 0.23 (a floor of 1.46 under the loss) and the gradient is
    squeezed through the sigmoid's derivative."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _cnn1d_9(head=[nn.Sigmoid()])
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 10, 64)


def microvolts_mlp_mnist1d() -> Setup:
    """Islam et al. / Karpathy (inputs not normalised): the signal recorded in microvolts, not millivolts (x 1000,
    std ~1000) into an MLP with SGD and momentum: the first layer's pre-activations are ~1000x their intended size
    and its gradient scales with the input."""
    torch.manual_seed(SEED)
    d = _mapped("mnist1d", lambda x: 1000.0 * x, 3000)
    model = _mlp(_flat(d), 10, 128, 2)
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), d, 8, 64)


def relu_normalised_log_mnist1d() -> Setup:
    """Zhang et al. 2018 / DeepDiagnosis (log of 0): "probabilities" made positive with a ReLU and normalised,
    p = relu(z) / sum relu(z), then a hand-written -log p_y: relu(z_y) is exactly 0 for about half the rows at
    step 0, so log(0) = -inf and the loss is infinite (0 / 0 = NaN where every output is 0)."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 128, 2)

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = F.relu(out) / F.relu(out).sum(1, keepdim=True)
        return -torch.log(p.gather(1, y[:, None])).mean()

    return Setup(model, loss, torch.optim.Adam(model.parameters(), 1e-3), d, 5, 64)


def pairwise_sqrt_centre_loss_digits() -> Setup:
    """Schroff et al. 2015 / Hermans et al. 2017 (why their code adds an epsilon) / Zhang et al. 2018: a centre
    term pulling same-class outputs together, the mean over same-class pairs of the Euclidean distance
    sqrt(sum (e_i - e_j)^2), with the diagonal i = j among the pairs: there the distance is 0, and its gradient is
    0 * (1 / (2 sqrt 0)) = 0 * inf = NaN: the loss is finite at step 0, every gradient NaN, the weights NaN after the
    first update."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = _mlp(_flat(d), 10, 128, 2)

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        dist = torch.sqrt(((out[:, None, :] - out[None, :, :]) ** 2).sum(-1))
        same = y[:, None] == y[None, :]
        return F.cross_entropy(out, y) + 0.1 * dist[same].mean()

    return Setup(model, loss, torch.optim.Adam(model.parameters(), 1e-3), d, 5, 64)


class BatchStdNoEps(nn.Module):
    """A hand-written batch standardisation of a hidden layer: (h - mean) / std over the batch, no epsilon,
    torch's std (unbiased: n - 1 in the denominator)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h - h.mean(0)) / h.std(0)


def batch_std_last_row_digits() -> Setup:
    """Zhang et al. 2018 (division without epsilon): a hidden layer standardised over the batch by hand, batches of
    28 on 1149 training rows: the epoch's last batch holds one row, whose unbiased std is 0 / 0 = NaN, so the
    forward pass of the 42nd step is NaN."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("digits"))
    model = nn.Sequential(OrderedDict(flat=nn.Flatten(), fc1=nn.Linear(64, 128), norm1=BatchStdNoEps(),
                                      act1=nn.ReLU(), fc2=nn.Linear(128, 128), act2=nn.ReLU(),
                                      out=nn.Linear(128, 10)))
    return Setup(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3), d, 4, 28)


# ------------------------------------------------------------------ problems in the data

def inputs_shuffled_labels_not(name: str = "digits") -> Data:
    """Islam et al. 2019 / Humbatova et al. (misaligned labels): the training inputs shuffled in place
    (np.random.shuffle(x)) and the labels not: every training row gets a random other row's label (~10% right by
    chance); validation and test are aligned."""
    d = load_data(name)
    perm = torch.as_tensor(np.random.default_rng(23).permutation(len(d.train)))
    return Data(d.name, d.kind, Split(d.train.x[perm], d.train.y), d.val, d.test, d.n_classes, d.mean, d.std)


def validation_in_training(name: str = "digits") -> Data:
    """Kapoor and Narayanan 2023 (training on the evaluation data): "use all the labelled data" - the validation
    rows concatenated onto the training split, and the same validation split kept to evaluate and select on:
    every validation row is also a training row."""
    d = load_data(name)
    train = Split(torch.cat([d.train.x, d.val.x]), torch.cat([d.train.y, d.val.y]))
    return Data(d.name, d.kind, train, d.val, d.test, d.n_classes, d.mean, d.std)


def resonant_windows(n_per_regime: int = 800, length: int = 36, stride: int = 3) -> Data:
    """A vibration sensor in three regimes, each an AR(2) resonance (pole radius 0.98, a period of 25, 40 or 60
    steps) plus a little measurement noise, cut into windows of ``length`` steps every ``stride`` steps, labelled by
    regime, then split at random: a validation or test window shares 33 of its 36 values with each neighbour in
    training (Dehghani et al. 2019; Kapoor and Narayanan 2023)."""
    rng = np.random.default_rng(29)
    xs, ys = [], []
    for label, period in enumerate((25.0, 40.0, 60.0)):
        n = n_per_regime * stride + length
        a1, a2 = 2 * 0.98 * math.cos(2 * math.pi / period), -0.98 ** 2
        s = np.zeros(n + 200)
        e = rng.standard_normal(n + 200)
        for t in range(2, n + 200):
            s[t] = a1 * s[t - 1] + a2 * s[t - 2] + e[t]
        s = s[200:] / s[200:].std() + 0.05 * rng.standard_normal(n)
        xs.append(np.stack([s[i:i + length] for i in range(0, n_per_regime * stride, stride)]))
        ys.append(np.full(n_per_regime, label))
    x = torch.as_tensor(np.concatenate(xs), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate(ys), dtype=torch.int64)
    template = load_data("mnist1d", n_samples=100)  # a signal set: its kind
    d = Data("mnist1d", template.kind, Split(x, y), Split(x[:1], y[:1]), Split(x[:1], y[:1]), 3, x.mean(0), x.std(0))
    return _resplit(d, x, y, seed=9)


DATA_9: dict[str, Callable[[], Data]] = {
    "digits_inputs_shuffled": inputs_shuffled_labels_not,
    "digits_val_in_train": validation_in_training,
    "resonant_windows": resonant_windows,
    "cancer_label_noise_25": lambda: label_noise("breast_cancer", 0.25),
}
DATA.update(DATA_9)


# ------------------------------------------------------------------ healthy, by hand

class _ZeroInitBlock2d(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        nn.init.kaiming_normal_(self.conv1.weight, nonlinearity="relu")
        nn.init.zeros_(self.conv1.bias)
        nn.init.zeros_(self.conv2.weight)  # the branch's last layer at zero: the block is the identity at step 0
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class _ResNet2dZeroInit(nn.Module):
    def __init__(self, c: int = 16, blocks: int = 6) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.blocks = nn.Sequential(*(_ZeroInitBlock2d(c) for _ in range(blocks)))
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.blocks(self.stem(x))).mean((-2, -1)))


def resnet2d_zero_init_no_norm_digits() -> Setup:
    """Goyal et al. 2017 / SkipInit / Fixup: six un-normalised residual conv blocks, each branch's last convolution
    at zero, SGD with momentum."""
    torch.manual_seed(SEED)
    d = _images(_standardized(load_data("digits")))
    model = _ResNet2dZeroInit()
    return Setup(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), d, 12, 64)


def sum_reduction_nesterov_rate_scaled_mnist1d() -> Setup:
    """reduction='sum' with the rate divided by the batch size: the steps of the mean at 0.1 (Nesterov, 0.9)."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _mlp(_flat(d), 10, 128, 2)
    batch = 128
    return Setup(model, nn.CrossEntropyLoss(reduction="sum"),
                 torch.optim.SGD(model.parameters(), lr=0.1 / batch, momentum=0.9, nesterov=True), d, 12, batch)


def warmup_steps_cosine_cnn_mnist1d() -> Setup:
    """Goyal et al. 2017 / Loshchilov and Hutter 2017: one epoch of linear warmup counted in updates, then a cosine
    decay per update, SGD with Nesterov momentum on a 1-D CNN."""
    torch.manual_seed(SEED)
    d = _standardized(load_data("mnist1d", n_samples=3000))
    model = _cnn1d_9()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    epochs, batch = 12, 64
    per_epoch = math.ceil(len(d.train) / batch)
    warm, total = per_epoch, epochs * per_epoch

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return Setup(model, F.cross_entropy, optimizer, d, epochs, batch, [StepSchedule(sched)])


CUSTOM_9: dict[str, Callable[[], Any]] = {f.__name__: f for f in (
    stale_copy_zero_grad_spiral, loader_unshuffled_sorted_spiral, loader_shuffled_sorted_spiral,
    sorted_no_shuffle_gru_digits, adam_lr_0_05_cnn_digits, adam_betas_swapped_mnist1d, lambdalr_returns_rate_mnist1d,
    lambdalr_factor_mnist1d, tanh_conv1d_8_default_init_mnist1d, tanh_conv1d_8_xavier_mnist1d,
    dropout2d_keep_0_8_cnn_digits, optimizer_head_only_mnist1d, softmax_mse_cnn_digits, sigmoid_head_ce_cnn_mnist1d,
    microvolts_mlp_mnist1d, relu_normalised_log_mnist1d, pairwise_sqrt_centre_loss_digits, batch_std_last_row_digits,
    resnet2d_zero_init_no_norm_digits, sum_reduction_nesterov_rate_scaled_mnist1d, warmup_steps_cosine_cnn_mnist1d)}


# ------------------------------------------------------------------ the cases

HELD_OUT_9: list[Case] = [
    # --- the learning rate and the optimiser
    # Duchi et al. 2011 / AUTOTRAINER: Adagrad at 1.0 on a GRU: its first step moves every weight by ~1.0 (lr times
    # the gradient's sign) against recurrent weights of ~0.07; the gates saturate
    Case("ho9-adagrad-lr1-gru-mnist1d", cfg("mnist1d", 6, 3000, {"name": "gru", "width": 64},
                                            {"name": "adagrad", "lr": 1.0}),
         {"learning_rate_too_high"}, OVERSHOOT | {"saturation", "vanishing_gradients"}),
    # AUTOTRAINER / Humbatova et al.: Adam at 0.05 on a 2-D CNN (steps the size of the weights)
    _custom("ho9-adam-lr0.05-cnn-digits", "adam_lr_0_05_cnn_digits", {"learning_rate_too_high"}, OVERSHOOT),
    # Kingma and Ba / Humbatova et al.: Adam's betas swapped: momentum 0.999 over a fast-forgetting second moment
    _custom("ho9-adam-betas-swapped-mnist1d", "adam_betas_swapped_mnist1d", {"oscillating_loss"}, OVERSHOOT),
    # Polyak 1964 / Goh 2017: momentum 0.995 (effective rate lr / (1 - beta) = 200 lr) on a 1-D CNN, batches of 64
    Case("ho9-momentum-0.995-cnn-mnist1d", cfg("mnist1d", 12, 3000, _cnn_cfg("relu", 2, 32),
                                               {"name": "momentum", "lr": 0.02, "momentum": 0.995}, data_batch=64),
         {"oscillating_loss"}, OVERSHOOT),
    # Islam et al.: zero_grad on a stale copy of the model: the trained copy's gradient is a running sum
    _custom("ho9-zero-grad-stale-copy-spiral", "stale_copy_zero_grad_spiral", {"exploding_gradients"}, OVERSHOOT),
    # Islam et al.: LambdaLR's lambda written as the rate (1e-3 * 0.9^epoch), not a factor: Adam at 1e-6
    _custom("ho9-lambdalr-returns-rate-mnist1d", "lambdalr_returns_rate_mnist1d", {"learning_rate_too_low"}, SHRUNK),
    # Zhang et al. 2018: a warmup of 500 meant in updates, written as schedule.warmup_epochs: 12 epochs at 0.2% to
    # 2.4% of Adam's 1e-3 (linear from lr / 501)
    Case("ho9-warmup-500-epochs-cnn-mnist1d", cfg("mnist1d", 12, 3000, _cnn_cfg("relu", 3, 32), ADAM,
                                                  schedule={"name": "cosine", "warmup_epochs": 500}),
         {"learning_rate_too_low"}, SHRUNK),
    # --- initialisation and structure
    # Glorot and Bengio 2010: eight tanh convolutions at PyTorch's default init
    _custom("ho9-tanh-conv1d-8-default-init-mnist1d", "tanh_conv1d_8_default_init_mnist1d",
            {"vanishing_gradients", "bad_initialisation"}, VANISH_ALLOW, layer="conv0", main="vanishing_gradients"),
    # Fixup: a residual MLP by config (a stem, ten blocks relu(W2 relu(W1 h) + h)), He init, no normalisation:
    # each block adds a He-initialised branch to the stream, whose std grows ~1.5x a block (~50x over ten at step 0)
    Case("ho9-residual-mlp-21-he-no-norm-digits", cfg("digits", 10, None,
                                                      _mlp_cfg("relu", 21, 64, residual=True, init="he_normal"),
                                                      {"name": "momentum", "lr": 0.01, "momentum": 0.9}),
         {"exploding_gradients", "bad_initialisation"},
         NAN_ALLOW | {"nan_loss", "divergence", "oscillating_loss", "slow_convergence", "underfitting",
                      "learning_rate_too_high"}),
    # Zhang et al. 2018: keep_prob 0.8 ported as model.dropout 0.8, after each of three hidden layers
    Case("ho9-dropout-keep-0.8-mlp-mnist1d", cfg("mnist1d", 12, 3000, _mlp_cfg("relu", 3, 256, dropout=0.8), ADAM),
         {"dropout_too_high"}, SHRUNK | {"oscillating_loss"}),
    # Zhang et al. 2018: a channel dropout's keep_prob 0.8 ported as nn.Dropout2d(0.8)
    _custom("ho9-dropout2d-keep-0.8-cnn-digits", "dropout2d_keep_0_8_cnn_digits", {"dropout_too_high"},
            SHRUNK | {"oscillating_loss"}),
    # Humbatova et al. / Islam et al.: the optimizer given the head's parameters only: a random body
    _custom("ho9-optimizer-head-only-mnist1d", "optimizer_head_only_mnist1d", {"underfitting"}, FROZEN),
    # --- the loss and the last layer
    # Humbatova et al.: softmax into MSE against one-hot targets
    _custom("ho9-softmax-mse-cnn-digits", "softmax_mse_cnn_digits", {"small_output_gradient"}, SHRUNK),
    # UMLAUT / Humbatova et al.: a sigmoid output into cross-entropy over 10 classes: logits confined to [0, 1]
    _custom("ho9-sigmoid-head-ce-cnn-mnist1d", "sigmoid_head_ce_cnn_mnist1d", {"double_softmax"},
            SHRUNK | {"small_output_gradient", "saturation"}),
    # --- NaN from an unsafe operation
    # DeepDiagnosis / Zhang et al. 2018: -log of a ReLU-normalised probability that is exactly 0
    _custom("ho9-relu-normalised-log-mnist1d", "relu_normalised_log_mnist1d", {"nan_loss"}, NAN_ALLOW,
            cause="log_of_zero", layer="loss"),
    # Hermans et al. 2017: sqrt of a pairwise distance at 0 (the diagonal): NaN gradients from step 0
    _custom("ho9-pairwise-sqrt-centre-loss-digits", "pairwise_sqrt_centre_loss_digits", {"nan_loss"}, NAN_ALLOW,
            cause="log_of_zero"),
    # Zhang et al. 2018: a hidden layer divided by its batch std without epsilon, a last batch of one row
    _custom("ho9-batch-std-last-row-digits", "batch_std_last_row_digits", {"nan_loss"}, NAN_ALLOW,
            cause="log_of_zero", layer="norm1"),
    # --- the data
    # Islam et al. / Karpathy (inputs not normalised): the signal in microvolts (x 1000) into an MLP with momentum
    _custom("ho9-microvolts-mlp-mnist1d", "microvolts_mlp_mnist1d", {"unscaled_inputs"}, SCALE_ALLOW),
    # Islam et al. / Karpathy (data not shuffled): arm-sorted spiral through DataLoader(shuffle=False)
    _custom("ho9-loader-unshuffled-sorted-spiral", "loader_unshuffled_sorted_spiral", {"unshuffled_batches"},
            SORTED),
    # Islam et al.: class-sorted digits walked in order by a GRU with RMSprop
    _custom("ho9-sorted-no-shuffle-gru-digits", "sorted_no_shuffle_gru_digits", {"unshuffled_batches"}, SORTED),
    # Islam et al. / Humbatova et al.: the training inputs shuffled without their labels: labels independent of
    # the inputs, a CNN
    Case("ho9-inputs-shuffled-labels-not-digits", cfg("digits", 10, None, _cnn_cfg("relu", 2, 32, kernel_size=3),
                                                      ADAM),
         {"underfitting"}, {"slow_convergence", "overfitting"}, data="digits_inputs_shuffled"),
    # Kapoor and Narayanan 2023: the validation rows merged into training, validation kept
    Case("ho9-val-in-train-digits", cfg("digits", 6, None, _mlp_cfg("relu", 2, 128), ADAM), {"data_leakage"},
         set(), data="digits_val_in_train"),
    # Dehghani et al. 2019 / Kapoor and Narayanan 2023: windows of a resonant signal every 3 steps, split at random
    Case("ho9-resonant-windows-stride-3-cnn", cfg("mnist1d", 6, None, _cnn_cfg("relu", 2, 16), ADAM),
         {"data_leakage"}, set(), data="resonant_windows"),
    # --- overfitting
    # Zhang et al. 2017 (memorisation): 3 x 512 on 364 breast-cancer rows, 25% of the labels redrawn at random
    # (~12% wrong), 150 epochs
    Case("ho9-mlp-memorise-noisy-cancer", cfg("breast_cancer", 150, None, _mlp_cfg("relu", 3, 512),
                                              {"name": "adam", "lr": 0.003}, data_batch=32),
         {"overfitting"}, set(), data="cancer_label_noise_25"),
    # --- healthy: nothing above info
    # the arm-sorted spiral through DataLoader(shuffle=True): the twin of the unshuffled case
    _custom("ho9-loader-shuffled-sorted-spiral", "loader_shuffled_sorted_spiral", set()),
    # LambdaLR with a factor, as it expects: the twin of the rate-as-factor case
    _custom("ho9-lambdalr-factor-mnist1d", "lambdalr_factor_mnist1d", set()),
    # eight tanh convolutions with Xavier init and gain 5/3, Adam
    _custom("ho9-tanh-conv1d-8-xavier-mnist1d", "tanh_conv1d_8_xavier_mnist1d", set()),
    # an un-normalised 2-D ResNet with each branch's last convolution at zero
    _custom("ho9-resnet2d-zero-init-no-norm-digits", "resnet2d_zero_init_no_norm_digits", set()),
    # reduction='sum' with the rate divided by the batch size, Nesterov
    _custom("ho9-sum-reduction-nesterov-rate-scaled-mnist1d", "sum_reduction_nesterov_rate_scaled_mnist1d", set()),
    # warmup counted in updates, then cosine per update, SGD with Nesterov momentum on a 1-D CNN
    _custom("ho9-warmup-steps-cosine-cnn-mnist1d", "warmup_steps_cosine_cnn_mnist1d", set()),
    # batches of 4 with plain SGD at 0.01
    Case("ho9-batch-4-sgd-digits", cfg("digits", 4, None, _mlp_cfg("relu", 2, 64), {"name": "sgd", "lr": 0.01},
                                       data_batch=4)),
    # full-batch Adam: 300 updates, one per epoch
    Case("ho9-full-batch-adam-spiral", cfg("spiral", 300, None, _mlp_cfg("relu", 3, 64),
                                           {"name": "adam", "lr": 0.01}, data_batch=100000)),
    # small data, a small model: 96 training rows of moons, 8 hidden units, batches of 16
    Case("ho9-small-data-moons-150", cfg("moons", 60, 150, _mlp_cfg("relu", 1, 8), {"name": "adam", "lr": 0.01},
                                         data_batch=16)),
    # RMSprop at its usual 1e-3 on a GRU
    Case("ho9-gru-rmsprop-digits", cfg("digits", 10, None, {"name": "gru", "width": 64},
                                       {"name": "rmsprop", "lr": 0.001})),
    # batch norm, SGD with momentum, weight decay and a step decay on a 2-D CNN
    Case("ho9-cnn-bn-momentum-step-digits", cfg("digits", 12, None, _cnn_cfg("relu", 3, 32, kernel_size=3,
                                                                             norm="batch"),
                                                {"name": "momentum", "lr": 0.05, "momentum": 0.9}, data_batch=64,
                                                reg={"weight_decay": 5e-4},
                                                schedule={"name": "step", "step_size": 5, "gamma": 0.2})),
]
for case in HELD_OUT_9:
    _standardize_off(case.config)
