"""Mechanisms the seventh held-out set showed the doctor got wrong, each on a run built to show it.

* a noisy training epoch just after the best validation epoch hid a memorising run's overfitting;
* a gradient stopped at the first activation (exactly 0) was read as one that vanished;
* a summed loss was a warning even when the rate had been divided by the batch size;
* a residual stream's ``stem -> block`` linear pair was read as a missing nonlinearity;
* overlapping windows of one series, split at random, were not seen as leakage.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.data import Split, load_data
from trainwell.doctor import Doctor, ScaleLR, audit, lint


def test_a_noisy_epoch_after_the_best_does_not_hide_a_later_overfitting():
    # the held-out run (3 x 256 on noisy moons): best validation at epoch 3, the next epoch's training loss a
    # hair above its value then, then training falls while validation climbs for the rest of the run
    train = [0.70, 0.60, 0.533, 0.536, 0.52, 0.50, 0.46, 0.42, 0.38, 0.34]
    val = [0.60, 0.50, 0.446, 0.456, 0.47, 0.49, 0.52, 0.56, 0.61, 0.66]
    d = Doctor(nn.Linear(2, 2))
    for t, v in zip(train, val):
        d.end_epoch(train_loss=t, val_loss=v)
    f = next(f for f in d.findings if f.symptom == "overfitting")
    assert f.evidence["best_epoch"] == 3 and f.epoch == 7  # three epochs of rise after the noisy one
    # a spike of the training loss inside the rise is still instability, not overfitting
    spike = Doctor(nn.Linear(2, 2))
    for t, v in zip([0.70, 0.60, 0.533, 0.52, 0.50, 0.60, 0.45], [0.60, 0.50, 0.446, 0.47, 0.49, 0.55, 0.56]):
        spike.end_epoch(train_loss=t, val_loss=v)
    assert not spike.has("overfitting")


def test_a_gradient_stopped_at_the_first_activation_is_not_a_vanishing_one():
    d = Doctor(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)))
    weights = [(1e-3, 1.0), (1e-3, 1.0)]  # weight gradients keep their ratio
    for _ in range(3):  # exactly 0 reaches the first activation: stopped (dead units, a detach)
        d._check_gradients(weights, {"a": {"state_grad": 0.0}, "b": {"state_grad": 1e-2}})
    assert not d.has("vanishing_gradients")
    for _ in range(2):  # a millionth of the last one's: shrunk on the way, two samples running
        d._check_gradients(weights, {"a": {"state_grad": 1e-8}, "b": {"state_grad": 1e-2}})
    assert d.has("vanishing_gradients")


def _summed_run(lr: float, steps: int = 3) -> Doctor:
    torch.manual_seed(0)
    x, y = torch.randn(256, 20), torch.randint(0, 5, (256,))
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    with Doctor(model, optimizer, every=1, loss_fn=loss_fn, n_classes=5) as doctor:
        for i in range(steps):
            xb, yb = x[64 * i:64 * (i + 1)], y[64 * i:64 * (i + 1)]
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            doctor.observe(loss, inputs=xb, targets=yb)
            optimizer.step()
    return doctor


@pytest.mark.parametrize("lr,severity", [(0.1, "warning"), (0.1 / 64, "info")])
def test_a_summed_loss_is_judged_by_the_size_of_its_first_step(lr, severity):
    (f,) = [f for f in _summed_run(lr).findings if f.symptom == "loss_sum_reduction"]
    assert f.severity == severity and f.step == 0
    # the mean's rate divided by the batch size gives the mean's step; the mean's rate gives 64 times it
    assert (f.evidence["first_step"] > 0.1) is (severity == "warning")
    assert (f.remedies == []) is (severity == "info")


def test_a_summed_loss_whose_first_step_was_never_measured_stays_a_warning():
    (f,) = [f for f in _summed_run(0.1, steps=1).findings if f.symptom == "loss_sum_reduction"]
    assert f.severity == "warning" and "first_step" not in f.evidence


class ResidualMLP(nn.Module):
    """A stem, then blocks ``x + W2 relu(W1 x)`` with no norm: the stem's output reaches W1 and the skip."""

    def __init__(self, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.stem = nn.Linear(20, 32)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32)) for _ in range(2))
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h) if self.skip else block(h)
        return self.head(torch.relu(h))


def test_a_linear_pair_on_a_residual_stream_is_not_a_missing_nonlinearity():
    torch.manual_seed(0)
    batch = torch.randn(64, 20), torch.randint(0, 5, (64,))
    assert lint(ResidualMLP(), F.cross_entropy, batch, n_classes=5) == []
    # without the skips, the stem's output reaches blocks.0.0 alone: two linear maps in a row
    (f,) = lint(ResidualMLP(skip=False), F.cross_entropy, batch, n_classes=5)
    assert f.symptom == "missing_nonlinearity"
    assert f.evidence["linear_pairs"] == ["stem -> blocks.0.0", "blocks.0.2 -> blocks.1.0"]


def _windows(stride: int, order: str, n: int = 600, length: int = 40):
    """Windows of one noisy series, split at random or in time (the first 80% of the series to training)."""
    rng = np.random.default_rng(0)
    t = np.arange(n * stride + length)
    series = np.sin(t / 9.0) + 0.1 * rng.standard_normal(len(t))
    x = torch.as_tensor(np.stack([series[i:i + length] for i in range(0, n * stride, stride)]), dtype=torch.float32)
    y = (x[:, -1] > 0).long()
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(0)) if order == "random" else torch.arange(n)
    cut = int(0.8 * n)
    return Split(x[idx[:cut]], y[idx[:cut]]), Split(x[idx[cut:]], y[idx[cut:]])


def test_overlapping_windows_split_at_random_are_leakage_and_split_in_time_are_not():
    train, val = _windows(stride=3, order="random")
    (f,) = [f for f in audit(train, val) if f.symptom == "data_leakage"]
    assert f.cause == "overlapping_windows" and f.evidence["shifted_copy_share"] > 0.9
    shift, row = f.evidence["example"]["shift"], f.evidence["example"]["train_row"]
    assert shift % 3 == 0 and 0 < shift <= 20 and any(  # the oracle: some measured row is that train row, shifted
        torch.equal(v[shift:shift + 20], train.x[row, :20]) for v in val.x)
    # split in time: only the windows at the boundary overlap, and windows that do not overlap at all
    assert "data_leakage" not in [f.symptom for f in audit(*_windows(stride=3, order="time"))]
    assert "data_leakage" not in [f.symptom for f in audit(*_windows(stride=40, order="random"))]
    digits = load_data("digits")  # small-integer pixels repeat in runs by chance: not counted
    assert "data_leakage" not in [f.symptom for f in audit(digits.train, digits.val, digits.test)]


def _walk(x, y, batch: int, epochs: int = 2, every: int = 10) -> Doctor:
    """A hand-written loop over the rows in the order given, with the doctor watching."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU(), nn.Linear(32, int(y.max()) + 1))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    with Doctor(model, optimizer, every=every) as doctor:
        for _ in range(epochs):
            for i in range(0, len(x), batch):
                loss = F.cross_entropy(model(x[i:i + batch]), y[i:i + batch])
                optimizer.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=x[i:i + batch], targets=y[i:i + batch])
                optimizer.step()
            doctor.end_epoch(train_loss=loss.item())
    return doctor


def test_batches_in_the_datas_class_order_are_unshuffled_and_shuffled_ones_are_not():
    d = load_data("digits")
    x, y = d.train.x.flatten(1), d.train.y
    order = torch.argsort(y, stable=True)
    sorted_run = _walk(x[order], y[order], batch=32)
    (f,) = [f for f in sorted_run.findings if f.symptom == "unshuffled_batches"]
    assert f.epoch == 1 and f.evidence["median_classes_in_batch"] <= 2 and f.evidence["classes_seen"] >= 5
    # the oracle of the evidence: a batch of 32 rows from at most two classes of ten about equal ones is at most
    # (2 x 0.15)^32 likely under shuffling
    assert f.evidence["median_log10_chance_if_shuffled"] < 32 * math.log10(0.3)
    assert [f.symptom for f in _walk(x, y, batch=32).findings if f.symptom == "unshuffled_batches"] == []
    # shuffled, a majority class alone in a small batch is likely: no finding (94% of the rows, batches of 8)
    g = torch.Generator().manual_seed(0)
    skewed = torch.where(torch.rand(len(y), generator=g) < 0.94, 0, 1 + torch.randint(0, 2, (len(y),), generator=g))
    assert not _walk(x, skewed, batch=8, every=5).has("unshuffled_batches")


def test_weights_that_start_at_zero_do_not_stop_the_training():
    # held-out set 8's first run: a residual branch whose last layer starts at 0 (Fixup's start) made the
    # update-size hook divide by |w| = 0 inside optimizer.step, which stopped the user's training
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.init.zeros_(model[2].weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    with Doctor(model, optimizer, every=1) as doctor:
        for _ in range(5):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            doctor.observe(loss, inputs=x, targets=y)
            optimizer.step()
    assert doctor.notes == [] and doctor.updates.failed is None
    first, last = doctor._update_ratios[0], doctor._update_ratios[-1]
    assert first[1] == float("inf") and all(0 < r < 1 for r in (first[0], first[2]))  # |w| was 0 before the step
    assert all(0 < r < 1 for r in last)  # and is not after it


def test_a_probe_whose_hook_fails_does_nothing_from_then_on_and_the_doctor_says_so():
    from trainwell.doctor.probes import Guarded

    calls = []
    probe = Guarded()
    hook = probe.guard(lambda v: calls.append(v) or 1 / v)
    assert hook(2) == 0.5 and hook(0) is None and hook(4) is None  # it failed at 0: 4 is never seen
    assert calls == [2, 0] and probe.failed == "ZeroDivisionError: division by zero"
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with Doctor(model, optimizer, every=1) as doctor:
        doctor.updates.failed = "RuntimeError: measured"
        x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        doctor.observe(loss, inputs=x, targets=y)
        optimizer.step()
    assert doctor.notes == ["the doctor's update-size measurements stopped after an internal error: "
                            "RuntimeError: measured"]


@pytest.mark.parametrize("overshot,lr,too_low", [(None, 0.1, True), (0.1, 0.1, False), (0.1, 0.001, True)])
def test_tiny_steps_after_the_same_rate_overshot_are_not_a_rate_too_low(overshot, lr, too_low):
    # held-out set 9: a residual CNN without norms overshot (median steps 0.14 of the weights), stalled at chance,
    # and its steps fell to 3e-5: the rate that threw it is no rate too low; one decayed 100x since may be
    model = nn.Linear(2, 2)
    d = Doctor(model, torch.optim.SGD(model.parameters(), lr=lr))
    d._update_ratios, d._overshot = [[1e-5, 1e-5]], overshot
    for _ in range(7):
        d.end_epoch(train_loss=2.3, train_acc=0.1)
    plateau = next(f for f in d.findings if f.symptom == "slow_convergence")
    assert d.has("learning_rate_too_low") is too_low and (plateau.cause == "learning_rate_too_low") is too_low
    assert any(isinstance(r, ScaleLR) for r in plateau.remedies) is too_low


def test_a_step_above_the_overshoot_threshold_keeps_the_rate_it_was_made_at():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=30.0)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    with Doctor(model, optimizer, every=1) as doctor:
        for _ in range(3):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            doctor.observe(loss, inputs=x, targets=y)
            optimizer.step()
    assert doctor._update_peak > 0.1 and doctor._overshot == 30.0
    assert Doctor(model).state_dict()["overshot"] is None and doctor.state_dict()["overshot"] == 30.0
