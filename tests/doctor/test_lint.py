"""The lint (static checks of model and loss), the audit's scale and near-copy rules, and the end-of-run verdict."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainwell.data import Split, load_data
from trainwell.doctor import AddDropout, Doctor, ScaleLR, audit, lint
from trainwell.doctor.probes import ActivationProbe, UpdateProbe, weighted_layers
from trainwell.doctor.verdict import linear_reference


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(128, 20, generator=g), torch.randint(0, 5, (128,), generator=g)


def mlp(*head, n_out=5, act=nn.ReLU):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), act(), nn.Linear(32, n_out), *head)


def symptoms(findings):
    return [f.symptom for f in findings]


def one_hot_mse(out, y):
    return F.mse_loss(out, F.one_hot(y, 5).float())


class PreLN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(20, 32)
        self.block = nn.Sequential(nn.LayerNorm(32), nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        h = self.stem(x)
        return self.head(h + self.block(h))


HEALTHY = {
    "cross-entropy": (lambda: mlp(), F.cross_entropy),
    "label smoothing": (lambda: mlp(), nn.CrossEntropyLoss(label_smoothing=0.1)),
    "class weights": (lambda: mlp(), nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0, 1.0, 0.5]))),
    "BCE per class": (lambda: mlp(), lambda o, y: F.binary_cross_entropy_with_logits(o, F.one_hot(y, 5).float())),
    "log-softmax + NLL": (lambda: mlp(nn.LogSoftmax(dim=1)), F.nll_loss),
    "in-place ReLU": (lambda: mlp(act=lambda: nn.ReLU(inplace=True)), F.cross_entropy),
    "pre-LN residual": (PreLN, F.cross_entropy),
    "transformer": (lambda: nn.Sequential(nn.Unflatten(1, (20, 1)), nn.Linear(1, 16), nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1, enable_nested_tensor=False), nn.Flatten(),
        nn.Linear(320, 5)), F.cross_entropy),
}


@pytest.mark.parametrize("name", HEALTHY)
def test_the_lint_is_silent_on_healthy_models(name, batch):
    make, loss = HEALTHY[name]
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert lint(model, loss, batch, n_classes=5) == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing changed


def test_a_softmax_before_cross_entropy_is_named_with_the_floor_it_puts_under_the_loss(batch):
    (f,) = lint(mlp(nn.Softmax(dim=1)), F.cross_entropy, batch)
    assert f.symptom == "double_softmax" and f.cause == "softmax_before_loss"
    # the best the model can do is a one-hot probability vector, read as logits: the oracle
    best = F.cross_entropy(torch.eye(5), torch.arange(5))
    assert f.evidence["lowest_possible_loss"] == pytest.approx(float(best), rel=1e-6)


@pytest.mark.parametrize("head,loss", [((nn.Sigmoid(),), one_hot_mse),
                                       ((), lambda o, y: one_hot_mse(o.softmax(1), y)),
                                       ((), lambda o, y: one_hot_mse(torch.sigmoid(o), y))])
def test_mse_after_a_squashing_output_is_a_gradient_that_vanishes_for_confident_mistakes(head, loss, batch):
    (f,) = lint(mlp(*head), loss, batch)
    assert f.symptom == "small_output_gradient"
    assert f.evidence["gradient_vs_cross_entropy_confidently_wrong"] < 1e-3 * f.evidence[
        "gradient_vs_cross_entropy_at_output"] + 1e-3


def test_a_summed_loss_is_batch_size_times_the_mean_and_its_remedy_divides_the_rate(batch):
    model = mlp()
    (f,) = lint(model, nn.CrossEntropyLoss(reduction="sum"), batch, optimizer=torch.optim.SGD(model.parameters(), 0.1))
    assert f.symptom == "loss_sum_reduction" and f.severity == "warning"
    assert f.evidence["gradient_vs_mean_cross_entropy"] == pytest.approx(128.0, rel=1e-5)
    assert f.remedies == [ScaleLR(float(f"{1 / 128:.3g}"))]
    adam = lint(model, nn.CrossEntropyLoss(reduction="sum"), batch, optimizer=torch.optim.Adam(model.parameters()))
    assert [x.severity for x in adam] == ["info"]  # Adam divides the gradient's scale out


def test_structure_checks(batch):
    wide = lint(mlp(n_out=8), F.cross_entropy, batch, n_classes=5)
    assert symptoms(wide) == ["output_width_mismatch"] and wide[0].evidence == {"outputs": 8, "classes": 5}
    stacked = nn.Sequential(nn.Linear(20, 32), nn.Dropout(0.1), nn.Flatten(), nn.Linear(32, 5))
    (f,) = lint(stacked, F.cross_entropy, batch)
    assert f.symptom == "missing_nonlinearity" and f.evidence["linear_pairs"] == ["0 -> 3"]
    dropped = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.9), nn.Linear(32, 5))
    (f,) = lint(dropped, F.cross_entropy, batch)
    assert f.symptom == "dropout_too_high" and f.remedies == [AddDropout(0.1)]
    bn = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 5))
    assert symptoms(lint(bn, F.cross_entropy, (batch[0][:2], batch[1][:2]))) == ["small_batch_norm"]
    assert lint(bn, F.cross_entropy, (batch[0][:8], batch[1][:8])) == []


def test_decay_on_norms_only_when_the_groups_say_it_was_not_meant():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))
    by_name = [p for n, p in model.named_parameters() if "bias" not in n], \
        [p for n, p in model.named_parameters() if "bias" in n]
    missed = torch.optim.AdamW([{"params": by_name[0], "weight_decay": 0.1},
                                {"params": by_name[1], "weight_decay": 0.0}])
    (f,) = lint(model, optimizer=missed)
    assert f.symptom == "weight_decay_on_norms" and f.evidence["decayed_1d_parameters"] == ["1.weight"]
    everything = torch.optim.AdamW(model.parameters(), weight_decay=0.1)  # one group: decay everywhere, as asked
    assert lint(model, optimizer=everything) == []
    assert symptoms(lint(model, optimizer=everything, exclude_bias_and_norm=True)) == ["weight_decay_on_norms"]


# ------------------------------------------------------------------ audit: absolute scale, near-copies

def test_the_audit_judges_absolute_scale_and_reports_constant_pixels_apart():
    d = load_data("digits")
    unit = Split(d.train.x / 16, d.train.y)
    found = {f.symptom: f for f in audit(unit, n_classes=10)}
    assert "unscaled_inputs" not in found and found["constant_features"].severity == "info"
    big = audit(Split(d.train.x * (255 / 16), d.train.y), n_classes=10)
    (f,) = [f for f in big if f.symptom == "unscaled_inputs"]
    x = d.train.x.reshape(len(d.train.x), -1) * (255 / 16)
    keep = x.std(0) > 1e-3 * x.std(0).median()
    assert f.evidence["input_rms"] == pytest.approx(float(x[:, keep].double().pow(2).mean().sqrt()), rel=1e-4)
    moons = load_data("moons")
    assert audit(moons.train) == []
    offset = audit(Split(moons.train.x + 100, moons.train.y))
    assert symptoms(offset) == ["unscaled_inputs"] and offset[0].evidence["max_mean_over_std"] > 100


def _noisy_copies(d, noise):
    x, y = torch.cat([d.train.x, d.val.x]), torch.cat([d.train.y, d.val.y])
    g = torch.Generator().manual_seed(0)
    x = torch.cat([x, x + noise * x.std(0) * torch.randn(x.shape, generator=g)])
    order = torch.randperm(len(x), generator=g)
    x, y = x[order], y.repeat(2)[order]
    cut = int(0.75 * len(x))
    return Split(x[:cut], y[:cut]), Split(x[cut:], y[cut:])


@pytest.mark.parametrize("name", ["moons", "breast_cancer"])
def test_near_copies_across_splits_are_leakage_and_clean_splits_are_not(name):
    d = load_data(name)
    assert "data_leakage" not in symptoms(audit(d.train, d.val, d.test))
    train, val = _noisy_copies(d, 0.01)
    (f,) = [f for f in audit(train, val) if f.symptom == "data_leakage"]
    assert f.cause == "near_duplicates" and f.evidence["near_copy_share"] > f.evidence["expected_by_chance"] + 0.08


# ------------------------------------------------------------------ probes: windows and the gradient's share

def test_a_unit_silent_on_one_batch_is_not_dead_over_the_window():
    relu = nn.Sequential(nn.ReLU())
    probe = ActivationProbe(relu)
    x = torch.tensor([[1.0, -1.0, -1.0]]).repeat(200, 1)  # batch 1: only unit 0 active
    relu(x)
    assert probe.collect(dead_rows=128)["0"]["dead"] == pytest.approx(2 / 3)  # one batch of 200 rows: a window
    relu(x[:100])
    assert "dead" not in probe.collect(dead_rows=128)["0"]  # 100 rows: not a window yet
    relu(-x[:100])  # units 1 and 2 active on these rows: none dead over the window
    assert probe.collect(dead_rows=128)["0"]["dead"] == 0.0
    probe.close()


def test_weight_decay_shrinkage_is_not_counted_as_a_step():
    layer = nn.Linear(10, 10)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, weight_decay=1.0)
    probe = UpdateProbe(opt, weighted_layers(layer))
    layer.weight.grad = torch.zeros_like(layer.weight)
    layer.bias.grad = torch.zeros_like(layer.bias)
    probe.armed = True
    opt.step()  # w <- w - 0.1 * w: a step of 0.1 of the weights, all of it decay
    assert probe.ratios[0] == pytest.approx(0.0, abs=1e-5)
    probe.close()


# ------------------------------------------------------------------ the end-of-run verdict

def test_the_linear_reference_fits_separable_data():
    d = load_data("blobs")
    assert linear_reference(d.train.x, d.train.y, d.n_classes) > 0.9


def test_a_run_that_got_nowhere_is_underfitting_at_its_last_epoch_and_a_trained_one_is_not():
    d = load_data("blobs")
    x, y = (d.train.x - d.mean) / d.std, d.train.y
    for lr, expect in ((1e-5, ["underfitting"]), (0.5, [])):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, d.n_classes))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        doctor = Doctor(model, opt, total_steps=3 * 10)
        for _ in range(3):
            for i in range(10):
                xb, yb = x[i * 64:(i + 1) * 64], y[i * 64:(i + 1) * 64]
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                doctor.observe(loss, inputs=xb, targets=yb)
                opt.step()
            doctor.end_epoch(train_loss=float(loss.detach()))
        doctor.close()
        found = [f for f in doctor.findings if f.symptom == "underfitting"]
        assert symptoms(found) == expect
        if found:
            e = found[0].evidence
            assert e["progress_to_linear"] == pytest.approx(
                (e["train_sample_accuracy"] - e["majority_class_accuracy"])
                / (e["linear_model_accuracy"] - e["majority_class_accuracy"]))
            assert not math.isnan(e["progress_to_linear"])


def test_the_doctor_lints_at_its_first_observe_when_it_has_the_loss(batch):
    model = mlp(nn.Softmax(dim=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Doctor(model, opt, loss_fn=F.cross_entropy) as doctor:
        x, y = batch
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        doctor.observe(loss, inputs=x, targets=y)
    assert "double_softmax" in symptoms(doctor.findings)
