"""The doctor on hand-written PyTorch loops: each rule fires on the mechanism it tests, and only there."""

import copy
import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.data import load_data
from trainwell.config import resolve_config
from trainwell.doctor import Doctor, Finding
from trainwell.doctor import AddClipping, ScaleLR, SetActivation, SetInit, SetLoss
from trainwell.runs import repairable

DATA = load_data("mnist1d", n_samples=1500)
X = (DATA.train.x - DATA.mean) / DATA.std
Y = DATA.train.y


def mlp(depth, act=nn.ReLU, width=64, init=None):
    layers, d = [], 40
    for _ in range(depth):
        lin = nn.Linear(d, width)
        if init is not None:
            init(lin)
        layers += [lin, act()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 10))


def loop(model, optimizer, epochs=3, x=X, y=Y, batch=64, loss_fn=F.cross_entropy, **doctor_kw):
    """The three added lines of the contract: Doctor(...), observe(...), end_epoch(...)."""
    doctor = Doctor(model, optimizer, **doctor_kw)
    for _ in range(epochs):
        total, correct, n = 0.0, 0, 0
        for i in range(0, len(x), batch):
            xb, yb = x[i:i + batch], y[i:i + batch]
            out = model(xb)
            loss = loss_fn(out, yb)
            optimizer.zero_grad()
            loss.backward()
            doctor.observe(loss, inputs=xb, targets=yb)
            if doctor.has("nan_loss"):
                break
            optimizer.step()
            total, correct, n = total + loss.item() * len(yb), correct + (out.argmax(1) == yb).sum().item(), n + len(yb)
        doctor.end_epoch(train_loss=total / max(n, 1), train_acc=correct / max(n, 1))
    doctor.close()
    return doctor


def step(model, optimizer, doctor, x, y):
    """One step of a hand-written loop with the doctor watching."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    doctor.observe(loss, inputs=x, targets=y)
    optimizer.step()


def symptoms(doctor):
    return {f.symptom for f in doctor.findings if f.severity != "info"}


def test_a_healthy_run_yields_nothing_above_info():
    torch.manual_seed(0)
    model = mlp(3)
    doctor = loop(model, torch.optim.Adam(model.parameters(), 1e-3), epochs=4)
    assert symptoms(doctor) == set(), [str(f) for f in doctor.findings]
    assert doctor.worst() == "none"


def test_deep_sigmoid_net_has_vanishing_gradients_in_its_first_layer():
    torch.manual_seed(0)
    model = mlp(6, nn.Sigmoid)
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.1), epochs=1)
    f = next(f for f in doctor.findings if f.symptom == "vanishing_gradients")
    assert f.layer == "0" and f.cause == "saturating_activation"
    assert f.evidence["ratio"] < 1e-2  # measured ~1e-5 for 6 sigmoid layers


def test_state_gradients_are_the_gradients_reaching_each_activation():
    """The probe's state gradient is the RMS of d loss / d output of the activation (autograd's retain_grad)."""
    from trainwell.doctor.probes import ActivationProbe

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 10))
    probe = ActivationProbe(model)
    kept = []

    def keep(module, inputs, output):
        output.retain_grad()
        kept.append(output)

    handles = [m.register_forward_hook(keep) for m in model if isinstance(m, nn.Tanh)]
    F.cross_entropy(model(X[:64]), Y[:64]).backward()
    measured = probe.collect()
    for h in handles:
        h.remove()
    probe.close()
    for name, out in zip(("1", "3"), kept):
        assert measured[name]["state_grad"] == pytest.approx(out.grad.pow(2).mean().sqrt().item(), rel=1e-6)


class LastState(nn.Module):
    """A classifier that reads a recurrent layer's last state, as trainwell's recurrent models do."""

    def __init__(self, rnn, hidden=32):
        super().__init__()
        self.rnn, self.out = rnn, nn.Linear(hidden, 10)

    def forward(self, x):
        states, _ = self.rnn(x)
        return self.out(states[:, -1] if self.rnn.batch_first else states[-1])


DIGITS = load_data("digits")
SEQ = (DIGITS.train.x - DIGITS.mean) / DIGITS.std  # 8 rows of 8 pixels: a sequence of 8 steps
SEQ_Y = DIGITS.train.y


@pytest.mark.parametrize("cell,batch_first", [(nn.RNN, True), (nn.GRU, False), (nn.LSTM, True)])
def test_gradients_through_time_are_the_gradients_reaching_the_first_and_last_inputs(cell, batch_first):
    """The probe's first/last are the RMS of d loss / d input at the first and last time step (autograd's own)."""
    from trainwell.doctor.probes import TimeProbe

    torch.manual_seed(0)
    model = LastState(cell(8, 32, num_layers=2, batch_first=batch_first))
    x = SEQ[:64] if batch_first else SEQ[:64].transpose(0, 1)
    probe = TimeProbe(model)
    loss = F.cross_entropy(model(x), SEQ_Y[:64])
    loss.backward()
    (first, last), = probe.collect().values()
    probe.active = False
    x_ = x.clone().requires_grad_()
    loss_ = F.cross_entropy(model(x_), SEQ_Y[:64])
    assert loss_.item() == loss.item()  # the copy the probe handed the layer changed nothing
    loss_.backward()
    g = x_.grad if batch_first else x_.grad.transpose(0, 1)
    assert first == pytest.approx(g[:, 0].pow(2).mean().sqrt().item(), rel=1e-6)
    assert last == pytest.approx(g[:, -1].pow(2).mean().sqrt().item(), rel=1e-6)
    assert probe.collect() == {}  # inactive: nothing recorded
    with torch.no_grad():
        probe.active = True
        model(x)
    assert probe.collect() == {}  # no backward pass without gradients
    probe.close()
    assert all(not m._forward_pre_hooks for m in model.modules())


class TimeMajorWithState(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.out = rnn, nn.Linear(rnn.proj_size or rnn.hidden_size, 10)

    def forward(self, x):
        states, _ = self.rnn(x.transpose(0, 1))
        return self.out(states[-1])


class Unbatched(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn, self.out = nn.RNN(8, 16), nn.Linear(16, 10)

    def forward(self, x):
        return torch.stack([self.out(self.rnn(row)[0][-1]) for row in x])  # one (time, features) at a time


@pytest.mark.parametrize("make", [lambda: TimeMajorWithState(nn.LSTM(8, 32, proj_size=16, num_layers=2)),
                                  lambda: TimeMajorWithState(nn.GRU(8, 16).requires_grad_(False)),
                                  Unbatched], ids=["lstm-projections", "frozen-gru", "unbatched-rnn"])
@pytest.mark.filterwarnings("ignore:LSTM with projections")
def test_unusual_recurrent_layers_never_stop_the_doctor(make):
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-3)
    doctor = Doctor(model, opt, every=1)
    for _ in range(3):
        step(model, opt, doctor, SEQ[:32], SEQ_Y[:32])
    assert not doctor._broken, doctor.notes
    assert any("unbatched" in n for n in doctor.notes) == (make is Unbatched)
    doctor.close()


def test_bidirectional_layers_are_not_measured_through_time():
    from trainwell.doctor.probes import TimeProbe

    assert TimeProbe(LastState(nn.GRU(8, 16, bidirectional=True, batch_first=True), 32)).modules == []


def big_recurrent_start(std=0.5):
    """An Elman ReLU RNN whose recurrent matrix starts at std 0.5 (spectral radius ~2.8 at width 32)."""
    torch.manual_seed(0)
    model = LastState(nn.RNN(8, 32, nonlinearity="relu", batch_first=True))
    with torch.no_grad():
        for p in model.rnn.parameters():
            nn.init.normal_(p, 0, std) if p.dim() == 2 else nn.init.zeros_(p)
    return model


def test_a_recurrent_start_that_explodes_through_time_is_found_at_step_0():
    model = big_recurrent_start()
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1, x=SEQ, y=SEQ_Y)
    found = next(f for f in doctor.findings if f.symptom == "exploding_gradients")
    assert found.step == 0 and found.layer == "rnn" and found.cause == "bad_initialisation"
    assert found.evidence["ratio_through_time"] > doctor.t.exploding_time_ratio
    assert found.evidence["ratio_through_time"] == pytest.approx(
        found.evidence["grad_rms_first_time_step"] / found.evidence["grad_rms_last_time_step"])
    assert found.remedies == [SetInit("orthogonal")]
    torch.manual_seed(0)
    healthy = LastState(nn.RNN(8, 32, batch_first=True))  # tanh, torch's default start
    assert symptoms(loop(healthy, torch.optim.Adam(healthy.parameters(), 3e-3), epochs=3, x=SEQ, y=SEQ_Y)) == set()


def test_after_step_0_gradients_exploding_through_time_must_hold_on_two_samples():
    model = big_recurrent_start()
    opt = torch.optim.SGD(model.parameters(), 0.0)  # the weights stay: every sample sees the same recurrence
    doctor = Doctor(model, opt, every=1)
    doctor.go_to(100, 3)  # a watch that goes on from a kept state: no step-0 check
    for i in range(2):
        step(model, opt, doctor, SEQ[:64], SEQ_Y[:64])
        assert doctor.has("exploding_gradients") == (i == 1)
    found = next(f for f in doctor.findings if f.symptom == "exploding_gradients")
    assert found.step == 101 and found.cause == "recurrence" and found.remedies == [AddClipping(1.0),
                                                                                   ScaleLR(0.1)]
    doctor.close()


def test_a_tiny_start_vanishes_in_the_state_gradients_while_weight_gradients_keep_their_ratio():
    """Glorot & Bengio's case: a tanh CNN started at std 0.01."""
    torch.manual_seed(0)
    convs = [nn.Conv1d(1 if i == 0 else 16, 16, 3, padding=1) for i in range(4)]
    for c in convs:
        nn.init.normal_(c.weight, std=0.01)
        nn.init.zeros_(c.bias)
    model = nn.Sequential(nn.Unflatten(1, (1, 40)), *[m for c in convs for m in (c, nn.Tanh())], nn.Flatten(),
                          nn.Linear(16 * 40, 10))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.1), epochs=1)
    f = next(f for f in doctor.findings if f.symptom == "vanishing_gradients")
    assert f.layer == "1" and f.cause == "bad_initialisation"
    assert f.evidence["state_grad_ratio"] < 1e-3 and f.evidence["ratio"] > 1e-2  # the state rule found it


def test_a_tiny_start_is_a_warning_dated_at_step_0():
    """The shrinking start that costs the run: vanishing gradients name it, and it is said where it was measured."""
    torch.manual_seed(0)
    model = mlp(4, init=lambda l: (nn.init.normal_(l.weight, 0, 0.01), nn.init.zeros_(l.bias)))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1)
    f = next(f for f in doctor.findings if f.symptom == "bad_initialisation")
    assert f.severity == "warning" and f.step == 0 and f.epoch == 1 and f.evidence["ratio_to_first"] < 0.1
    assert f.remedies == [SetInit("he_normal")]


def test_a_shrinking_start_whose_first_epoch_does_not_learn_is_a_warning():
    """No rule names the start, but the first epoch's loss barely fell: the suspicion is a warning."""
    torch.manual_seed(0)
    model = mlp(3, init=lambda l: (nn.init.normal_(l.weight, 0, 0.02), nn.init.zeros_(l.bias)))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 1e-4), epochs=1)
    f = next(f for f in doctor.findings if f.symptom == "bad_initialisation")
    assert f.severity == "warning" and f.evidence["loss_fall"] < doctor.t.init_progress


def test_torchs_default_start_in_the_readme_digits_cnn_is_info_when_it_learns(tmp_path):
    """Issue 24: the digits CNN with PyTorch's default init shrinks its spread ~14x over three convolutions, yet
    it learns (it reaches ~0.98): info, with no remedy to apply, not a warning."""
    from trainwell import train

    run = train({"data": {"name": "digits"}, "model": {"name": "cnn"}, "train": {"epochs": 6, "progress": False},
                 "checkpoint": {"every_epochs": None, "best": False}}, out=tmp_path / "run", progress=False)
    f = next(f for f in run.findings if f.symptom == "bad_initialisation")
    assert f.severity == "info" and f.remedies == [] and f.evidence["ratio_to_first"] < 0.1
    assert f.evidence["loss_fall"] > 0.3, f.evidence
    assert "bad_initialisation" not in {f.symptom for f in run.findings if f.severity != "info"}


def test_large_tanh_weights_saturate():
    torch.manual_seed(0)
    model = mlp(3, nn.Tanh, init=lambda l: nn.init.normal_(l.weight, 0, 2.0))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1)
    f = next(f for f in doctor.findings if f.symptom == "saturation")
    assert f.evidence["saturated_share"] > 0.6 and f.layer in {"1", "3", "5"}


def test_negative_biases_kill_relus():
    torch.manual_seed(0)
    model = mlp(3, init=lambda l: nn.init.constant_(l.bias, -5.0))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1)
    f = next(f for f in doctor.findings if f.symptom == "dead_relu")
    assert f.evidence["dead_share"] > 0.5
    assert "learning_rate_too_low" not in symptoms(doctor)  # no gradient at all is not a small step


def test_dead_relus_that_stop_every_gradient_are_not_called_vanishing():
    torch.manual_seed(0)
    model = mlp(3, init=lambda l: nn.init.constant_(l.bias, -5.0))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1)
    assert model[0].weight.grad.abs().max() == 0  # the first layer gets exactly nothing
    assert "dead_relu" in symptoms(doctor) and "vanishing_gradients" not in symptoms(doctor)


def test_the_learning_rate_remedy_is_sized_from_the_first_step():
    """SGD's first step is proportional to the rate: the remedy's rate makes it step_target of the weights."""
    def first_step(lr):
        torch.manual_seed(0)
        model = mlp(3)
        doctor = loop(model, torch.optim.SGD(model.parameters(), lr), epochs=1, every=1)
        return doctor, doctor._first_step_size()

    doctor, size = first_step(20.0)
    finding = next(f for f in doctor.findings if f.symptom == "nan_loss")
    assert finding.cause == "learning_rate_too_high"
    factor = next(r for r in finding.remedies if isinstance(r, ScaleLR)).factor
    assert factor == pytest.approx(min(0.1, doctor.t.step_target / size), rel=1e-2)
    _, repaired = first_step(20.0 * factor)
    assert repaired == pytest.approx(min(size * 0.1, doctor.t.step_target), rel=2e-2)


def test_huge_init_explodes_and_its_nan_is_blamed_on_exploding_gradients():
    torch.manual_seed(0)
    model = mlp(8, init=lambda l: nn.init.normal_(l.weight, 0, 1.0))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1)
    assert "bad_initialisation" in symptoms(doctor)
    nan = next(f for f in doctor.findings if f.symptom == "nan_loss")
    assert nan.cause == "exploding_gradients" and nan.severity == "error"


def test_too_high_learning_rate_nan_names_the_learning_rate_and_the_origin():
    torch.manual_seed(0)
    model = mlp(3)
    doctor = loop(model, torch.optim.SGD(model.parameters(), 20.0), epochs=1)
    nan = next(f for f in doctor.findings if f.symptom == "nan_loss")
    assert nan.cause == "learning_rate_too_high"
    assert nan.layer in {"0", "2", "4", "6"}  # a linear layer overflowed first; later ones only passed it on
    (change,) = nan.remedies  # sized from the measured steps: back to ~1e-2 of the weights, at least 10x lower
    assert isinstance(change, ScaleLR) and change.factor <= 0.1


def first_step_ratio(model, optimizer):
    """The median over weight matrices of |dw| / |w| after one step, measured here by hand (the oracle), without
    the part of dw that shrinks w along itself (issue 18: the gradient's share of the update, not decay's)."""
    model = copy.deepcopy(model)
    optimizer = type(optimizer)(model.parameters(), **optimizer.defaults)
    weights = [p for p in model.parameters() if p.dim() >= 2]
    before = [w.detach().clone() for w in weights]
    F.cross_entropy(model(X[:64]), Y[:64]).backward()
    optimizer.step()
    def share(d, b):
        radial = float((d * b).sum() / b.norm())
        return math.sqrt(max(float(d.norm()) ** 2 - (radial ** 2 if radial < 0 else 0.0), 0.0)) / float(b.norm())

    return statistics.median(share(w.detach() - b, b) for w, b in zip(weights, before))


@pytest.mark.parametrize("make", [lambda p: torch.optim.Adagrad(p, 10.0), lambda p: torch.optim.RMSprop(p, 1.0)],
                         ids=["adagrad-10", "rmsprop-1"])
def test_an_overshooting_first_step_that_blows_up_is_a_learning_rate_too_high(make):
    """Adaptive steps of ~lr per weight: the weights grow, later steps look small next to them, the loss diverges."""
    torch.manual_seed(0)
    model = mlp(3)
    optimizer = make(model.parameters())
    expected = first_step_ratio(model, optimizer)
    doctor = loop(model, optimizer, epochs=2)
    high = next(f for f in doctor.findings if f.symptom == "learning_rate_too_high")
    assert high.evidence["first_update_to_weight"] == pytest.approx(expected, rel=1e-4) and expected > 0.1
    assert high.evidence["then"] == "divergence"
    assert doctor._counts["lr_high"] < doctor.t.persist  # the two-sample rule alone would have missed it
    diverged = next(f for f in doctor.findings if f.symptom == "divergence")
    assert diverged.cause == "learning_rate_too_high" and diverged.step == high.step
    (change,) = high.remedies
    assert change.factor == pytest.approx(doctor.t.step_target / expected, rel=1e-2)


def test_an_overshooting_first_step_alone_is_no_finding():
    """RMSprop at torch's default rate: its first step (no bias correction) is larger than the weights; then it
    settles and trains - one sample is not a finding."""
    digits = load_data("digits")
    x, y = ((digits.train.x - digits.mean) / digits.std).flatten(1), digits.train.y
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    doctor = loop(model, torch.optim.RMSprop(model.parameters(), 0.01), epochs=6, x=x, y=y, batch=128)
    assert doctor._overshoot() > 0.1
    assert symptoms(doctor) == set(), [str(f) for f in doctor.findings]


def test_on_finding_is_handed_the_finding_with_its_sized_remedy():
    """A rule sizes a remedy after it records the finding; the callback (the trainer's printout) sees the result."""
    said = []
    torch.manual_seed(0)
    model = mlp(3)
    doctor = loop(model, torch.optim.SGD(model.parameters(), 20.0), epochs=1,
                  on_finding=lambda f: said.append((f.symptom, f.remedy, list(f.remedies))))
    assert said == [(f.symptom, f.remedy, f.remedies) for f in doctor.findings]
    assert any(isinstance(r, ScaleLR) and r != ScaleLR(0.1) for _, _, remedies in said for r in remedies)
    model = big_recurrent_start()
    said.clear()
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1, x=SEQ, y=SEQ_Y,
                  on_finding=lambda f: said.append((f.symptom, f.remedy, list(f.remedies))))
    assert ("exploding_gradients", doctor.findings[0].remedy, [SetInit("orthogonal")]) in said


def test_an_on_finding_that_raises_is_noted_and_the_doctor_goes_on():
    def broken(finding):
        raise RuntimeError("printer on fire")

    torch.manual_seed(0)
    model = mlp(3)
    doctor = loop(model, torch.optim.SGD(model.parameters(), 20.0), epochs=1, on_finding=broken)
    assert doctor.has("nan_loss") and not doctor._broken
    assert any("printer on fire" in n for n in doctor.notes)


def test_bad_input_rows_are_named():
    torch.manual_seed(0)
    x = X.clone()
    x[70, 3] = float("nan")  # row 6 of the second batch of 64
    model = mlp(2)
    doctor = loop(model, torch.optim.Adam(model.parameters(), 1e-3), epochs=1, x=x)
    nan = next(f for f in doctor.findings if f.symptom == "nan_loss")
    assert nan.cause == "bad_input" and nan.evidence["rows_in_batch"] == [6] and nan.step == 1
    assert nan.evidence["where"] == "inputs"


def test_log_of_zero_in_the_loss_is_told_apart_from_the_model():
    def naive(logits, y):  # log of a softmax probability that underflows to 0
        p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
        return -torch.log(p.gather(1, y[:, None])).mean()

    torch.manual_seed(0)
    model = mlp(2)
    with torch.no_grad():
        model[-1].weight.mul_(500.0)
    doctor = loop(model, torch.optim.SGD(model.parameters(), 1e-3), epochs=1, loss_fn=naive)
    nan = next(f for f in doctor.findings if f.symptom == "nan_loss")
    assert nan.cause == "log_of_zero" and nan.layer == "loss"
    assert nan.remedies == [SetLoss("cross_entropy")]


class LogLayer(nn.Module):
    def forward(self, x):
        return torch.log(x)  # log of ReLU outputs: log(0) = -inf from finite values


def test_a_non_finite_operation_inside_the_model_names_its_module_not_the_ones_after():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 16), nn.ReLU(), LogLayer(), nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 10))
    doctor = loop(model, torch.optim.SGD(model.parameters(), 0.01), epochs=1)
    nan = next(f for f in doctor.findings if f.symptom == "nan_loss")
    assert nan.layer == "2" and nan.cause == "log_of_zero"
    assert nan.evidence["passed_on"][:2] == ["3", "4"]


def test_tiny_learning_rate_is_too_low_and_plateaus():
    torch.manual_seed(0)
    model = mlp(2)
    doctor = loop(model, torch.optim.SGD(model.parameters(), 1e-7), epochs=7, every=5)
    found = symptoms(doctor)
    assert {"learning_rate_too_low", "slow_convergence", "underfitting"} <= found
    plateau = next(f for f in doctor.findings if f.symptom == "slow_convergence")
    assert plateau.cause == "learning_rate_too_low"


def test_steps_that_cannot_move_the_weights_in_the_whole_run_are_a_rate_too_low_at_once():
    """Adagrad at 1e-6 steps ~4e-6 of the weights: over the run's 72 updates, at most 3e-4 - found on the second
    sample when the run's length is known, not before a plateau of 5 epochs when it is not."""
    found = {}
    for total in (72, None):
        torch.manual_seed(0)
        model = mlp(3)
        doctor = loop(model, torch.optim.Adagrad(model.parameters(), 1e-6), epochs=3, total_steps=total)
        found[total] = next((f for f in doctor.findings if f.symptom == "learning_rate_too_low"), None)
    assert found[None] is None
    assert found[72].step == 11 and found[72].evidence["steps_left"] == 72 - 11
    assert found[72].evidence["most_the_run_can_move"] < 0.01
    factor = found[72].remedies[0].factor
    assert factor == pytest.approx(0.03 / found[72].evidence["update_to_weight_median"], rel=0.01)


def test_a_warmup_from_a_tiny_rate_is_not_a_rate_too_low():
    """The rate rises 10x every 10 steps from 1e-5 of its value: its first steps are tiny by design."""
    for warm in (True, False):
        torch.manual_seed(0)
        model = mlp(3)
        opt = torch.optim.SGD(model.parameters(), 0.1)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, 10 ** (s / 10 - 5)) if warm else 1e-5)
        doctor = Doctor(model, opt, total_steps=200)
        for i in range(60):
            step(model, opt, doctor, X[64 * (i % 16):64 * (i % 16 + 1)], Y[64 * (i % 16):64 * (i % 16 + 1)])
            schedule.step()
        assert doctor.has("learning_rate_too_low") == (not warm), [str(f) for f in doctor.findings]
        doctor.close()


def test_epoch_rules_on_given_numbers():
    d = Doctor(nn.Linear(2, 2))
    for loss in (1.0, 0.8, 0.9, 1.2, 1.6, 2.0):  # rises three epochs running to 2x its minimum
        d.end_epoch(train_loss=loss)
    assert d.has("divergence")
    d = Doctor(nn.Linear(2, 2))
    for loss in (1.0, 1.5, 0.9, 1.4, 0.8, 1.3, 0.9, 1.4, 0.8):
        d.end_epoch(train_loss=loss)
    assert d.has("oscillating_loss") and not d.has("divergence")
    d = Doctor(nn.Linear(2, 2))
    for i, val in enumerate((1.0, 0.8, 0.7, 0.75, 0.8, 0.85, 0.9)):
        d.end_epoch(train_loss=1.0 - 0.1 * i, val_loss=val, train_acc=0.6 + 0.05 * i, val_acc=0.6)
    f = next(f for f in d.findings if f.symptom == "overfitting")
    assert f.evidence["best_epoch"] == 3 and f.severity == "warning"  # numbered from 1, as history.jsonl
    fitted = Doctor(nn.Linear(2, 2))  # swings around a fitted solution are not oscillation
    for loss in (1.0, 0.05, 0.04, 0.05, 0.04, 0.05, 0.04, 0.05, 0.04):
        fitted.end_epoch(train_loss=loss, train_acc=0.99)
    assert not fitted.has("oscillating_loss")
    for first, overfit in ((1.0, False), (2.3, True)):  # validation rising, the training loss falling from 1.5:
        d = Doctor(nn.Linear(2, 2))  # not overfitting while training is still worse than the untrained model
        d.observe(first)
        for i, val in enumerate((1.0, 0.8, 0.7, 0.75, 0.8, 0.85, 0.9)):
            d.end_epoch(train_loss=1.5 - 0.05 * i, val_loss=val)  # (worse than validation: not a condition)
        assert d.has("overfitting") is overfit
    spike = Doctor(nn.Linear(2, 2))  # a training spike that drags validation up with it: instability
    for train, val in ((1.0, 0.9), (0.6, 0.5), (0.4, 0.35), (0.3, 0.3), (1.2, 0.6), (0.5, 0.45), (0.29, 0.4)):
        spike.end_epoch(train_loss=train, val_loss=val)
    assert not spike.has("overfitting")
    # worse and worse, or jumping about a level: the held-out run (tanh + batch norm on spiral) whose validation
    # loss went 0.0221 (best) -> 0.0249, 0.0412, 0.0369 -> 0.0206, and the same window still climbing
    for last, overfit in ((0.0369, False), (0.0450, True)):
        d = Doctor(nn.Linear(2, 2))
        for i, val in enumerate((0.09, 0.05, 0.0221, 0.0249, 0.0412, last)):
            d.end_epoch(train_loss=0.08 - 0.005 * i, val_loss=val, train_acc=0.98)
        assert d.has("overfitting") is overfit
    for train_acc, overfit in ((0.65, False), (0.75, True)):  # bad on the training data first: not overfitting
        d = Doctor(nn.Linear(2, 2))
        for i, val in enumerate((1.0, 0.8, 0.7, 0.75, 0.8, 0.85, 0.9)):
            d.end_epoch(train_loss=1.0 - 0.1 * i, val_loss=val, train_acc=train_acc, val_acc=0.6)
        assert d.has("overfitting") is overfit
    for steps, raises in ((0.05, False), (1e-3, True)):  # a plateau: a higher rate only while steps are small
        flat = Doctor(nn.Linear(2, 2))
        flat._update_ratios = [[steps, steps]]
        for _ in range(7):
            flat.end_epoch(train_loss=1.0, train_acc=0.3)
        plateau = next(f for f in flat.findings if f.symptom == "slow_convergence")
        assert any(isinstance(r, ScaleLR) for r in plateau.remedies) is raises
        # read back (diagnosis.json, a checkpoint): a remedy emptied on purpose stays empty, so nothing repairs it
        again = Finding(**plateau.to_dict())
        assert again.remedies == plateau.remedies and repairable(again, resolve_config({})) is raises
    healthy = Doctor(nn.Linear(2, 2))
    for i in range(10):
        healthy.end_epoch(train_loss=1.0 / (i + 1), val_loss=1.1 / (i + 1), train_acc=0.5 + 0.05 * i,
                          val_acc=0.5 + 0.04 * i)
    assert healthy.findings == []


def _epochs_of_steps(losses: list[float], steps_per_epoch: int, first: float = 0.77) -> Doctor:
    d = Doctor(nn.Linear(2, 2))
    d.observe(first)  # the untrained model's loss
    for loss in losses:
        for _ in range(steps_per_epoch - 1 if d.step == 1 else steps_per_epoch):
            d.observe(loss)
        d.end_epoch(train_loss=loss)
    return d


def test_a_short_spike_below_the_first_loss_is_not_divergence_nor_a_plateau():
    """Full-batch GD near the stability edge: the loss rises for a few steps and comes back (catapult)."""
    spike = [0.6, 0.4, 0.3, 0.25, 0.2, 0.17, 0.173, 0.176, 0.195, 0.245, 0.412, 0.479, 0.37, 0.2, 0.15]
    d = _epochs_of_steps(spike, steps_per_epoch=1)
    assert not d.has("divergence") and not d.has("slow_convergence")
    long_rise = _epochs_of_steps(spike[:12], steps_per_epoch=20)  # the same rise over 100 updates: a trend
    f = next(f for f in long_rise.findings if f.symptom == "divergence")
    assert f.epoch == 11 and f.evidence["train_loss"] == spike[7:11]  # 3 rises to 0.412 > 1.5 x 0.17, 100 steps
    above = _epochs_of_steps([0.6, 0.4, 0.3, 0.5, 0.7, 0.9], steps_per_epoch=1)  # past the untrained loss: undone
    assert above.has("divergence")


def test_hooks_are_removed_and_the_model_is_unchanged():
    model = mlp(2)
    before = [len(m._forward_hooks) for m in model.modules()]
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with Doctor(model, opt) as doctor:
        assert sum(len(m._forward_hooks) for m in model.modules()) > 0
        model(X[:4]).sum().backward()
        doctor.observe(torch.tensor(1.0), inputs=X[:4])
        opt.step()
    assert [len(m._forward_hooks) for m in model.modules()] == before
    assert len(opt._optimizer_step_pre_hooks) == 0 and len(opt._optimizer_step_post_hooks) == 0


def test_an_activation_whose_output_is_not_a_tensor_is_noted_once():
    class PairReLU(nn.ReLU):
        def forward(self, x):
            return super().forward(x), x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.act, self.out = nn.Linear(4, 4), PairReLU(), nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.act(self.lin(x))[0])

    from trainwell.doctor.probes import _ACTIVATION_CLASSES

    _ACTIVATION_CLASSES[PairReLU] = "relu"
    try:
        model = Net()
        d = Doctor(model, torch.optim.SGD(model.parameters(), 0.1))
        for _ in range(2):
            loss = model(torch.randn(8, 4)).sum()
            loss.backward()
            d.observe(loss)
        assert sum("are not tensors" in n for n in d.notes) == 1
        d.close()
    finally:
        del _ACTIVATION_CLASSES[PairReLU]


def test_a_packed_sequence_is_noted_once_and_still_trains():
    from torch.nn.utils.rnn import pack_padded_sequence

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.out = nn.GRU(8, 16, batch_first=True), nn.Linear(16, 10)

        def forward(self, x):
            _, h = self.rnn(pack_padded_sequence(x, torch.full((len(x),), 8), batch_first=True))
            return self.out(h[-1])

    torch.manual_seed(0)
    model = Packed()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    doctor = Doctor(model, opt, every=1)
    for _ in range(3):
        step(model, opt, doctor, SEQ[:32], SEQ_Y[:32])
    assert sum("gradient through time is not measured" in n for n in doctor.notes) == 1
    assert not doctor._broken and doctor.findings == []
    doctor.close()


def test_what_it_cannot_measure_is_said_once_and_nothing_crashes():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x * 2  # a tuple output

    model = nn.Sequential(Pair())
    d = Doctor(model, optimizer=None)
    assert any("no weight matrices" in n for n in d.notes)
    assert any("no activation modules" in n for n in d.notes)
    assert any("update sizes" in n for n in d.notes)
    for _ in range(3):
        d.observe(torch.tensor(0.5))
    d.end_epoch(train_loss=0.5)
    assert d.findings == []

    class Broken:
        def __float__(self):
            raise RuntimeError("boom")

    d.observe(Broken())  # an internal error: said once, never raised
    assert any("internal error" in n for n in d.notes)
    notes = list(d.notes)
    d.observe(torch.tensor(0.5))  # after it, the doctor counts on but judges nothing more
    d.end_epoch(train_loss=0.5)
    assert d.step == 5 and d.epoch == 2 and d.findings == [] and d.notes == notes


def test_state_dict_round_trip_continues_the_diagnosis():
    torch.manual_seed(0)
    model = mlp(6, nn.Sigmoid)
    opt = torch.optim.SGD(model.parameters(), 0.1)
    d = Doctor(model, opt)
    for i in range(12):
        out = model(X[i * 32:(i + 1) * 32])
        loss = F.cross_entropy(out, Y[i * 32:(i + 1) * 32])
        opt.zero_grad()
        loss.backward()
        d.observe(loss)
        opt.step()
    state = d.state_dict()
    d.close()
    again = Doctor(model, opt)
    again.load_state_dict(state)
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in d.findings]
    assert again.step == 12
    again.close()


def test_findings_read_as_plain_words():
    f = Finding("dead_relu", "warning", step=3, epoch=0, evidence={"dead_share": 0.75}, layer="net.hidden0.act")
    text = str(f)
    assert text.startswith("[warning] dead relu in net.hidden0.act (epoch 0, step 3)")
    assert "dead_share=0.75" in text and "leaky ReLU" in text
    assert f.remedies == [SetActivation("leaky_relu"), ScaleLR(0.1), SetInit("he_normal")]
    with pytest.raises(ValueError, match="unknown symptom"):
        Finding("sadness", "warning", 0, 0)
    again = Finding(**f.to_dict())  # as diagnosis.json reads back: the structured remedies too
    assert again.remedies == f.remedies and str(again) == text


def test_degradation_compares_training_losses_across_depths():
    from trainwell.doctor import degradation

    f = degradation([(3, 0.20), (9, 0.21), (18, 0.40)])
    assert f.symptom == "degradation" and (f.evidence["shallower"], f.evidence["deeper"]) == (3, 18)
    assert degradation([(3, 0.20), (18, 0.19)]) is None  # deeper and better: no degradation


def test_saturation_is_repaired_in_steps_relu_and_he_then_batch_norm():
    from trainwell.config import apply_overrides
    from trainwell.runs import plan_repair

    found = Finding("saturation", "warning", 0, 1)
    sigmoid = resolve_config({"model": {"activation": "sigmoid"}})
    assert plan_repair([found], sigmoid)[1] == ["model.activation=relu", "model.init=he_normal"]
    relu_he = apply_overrides(sigmoid, ["model.activation=relu", "model.init=he_normal"])
    assert plan_repair([found], relu_he)[1] == ["model.norm=batch"]  # still saturated: the remedy's next step
    assert plan_repair([found], relu_he, tried=[["model.norm=batch"]]) is None
    assert plan_repair([found], apply_overrides(relu_he, ["model.norm=batch"])) is None  # nothing left to apply
    vanishing = Finding("vanishing_gradients", "warning", 0, 1)  # vanishing gradients: all three at once
    assert plan_repair([vanishing], sigmoid)[1] == ["model.activation=relu", "model.init=he_normal", "model.norm=batch"]


def test_a_finding_caused_by_the_start_is_repaired_before_its_consequences():
    from trainwell.runs import plan_repair

    cfg = resolve_config({"model": {"name": "rnn", "activation": "relu", "init": "normal",
                                    "init_options": {"std": 0.3}}, "optim": {"name": "sgd", "lr": 0.01}})
    nan = Finding("nan_loss", "error", 12, 1, cause="exploding_gradients")  # an error, found later
    through_time = Finding("exploding_gradients", "warning", 0, 1, cause="bad_initialisation",
                           remedies=[SetInit("orthogonal")])
    assert plan_repair([nan, through_time], cfg)[1] == ["model.init=orthogonal", "model.init_options={}"]
    assert plan_repair([nan, Finding("exploding_gradients", "warning", 0, 1, cause="depth")], cfg)[0] is nan
    init = Finding("bad_initialisation", "warning", 0, 1)  # the root itself still comes first
    assert plan_repair([through_time, init], cfg)[0] is init


def test_the_audit_reports_labels_out_of_range_and_counts_the_others():
    from trainwell.data import Split
    from trainwell.doctor import audit

    x = torch.randn(40, 3)
    y = torch.tensor([0] * 32 + [1] * 4 + [-1, 2, 7, 1])
    found = audit(Split(x, y), n_classes=2)
    (labels,) = [f for f in found if f.symptom == "bad_input"]
    assert labels.evidence["label_rows"] == [36, 37, 38] and labels.severity == "error"
    (skew,) = [f for f in found if f.symptom == "class_imbalance"]
    assert skew.evidence["class_counts"] == [32, 5]  # the three bad labels are not counted
