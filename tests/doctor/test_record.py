"""stats.jsonl: the doctor's per-layer samples, written as measured (non-finite values counted, never dropped)."""

import json
import math

import pytest
import torch
from torch import nn

from trainwell.doctor import Doctor
from trainwell.doctor.record import HIST_BINS, StatsRecorder, read_stats


def _loop(model, optimizer, doctor, x, y, epochs=2, batches=10, size=25):
    for _ in range(epochs):
        for i in range(batches):
            xb, yb = x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]
            loss = nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            doctor.observe(loss, inputs=xb, targets=yb)
            optimizer.step()
        doctor.end_epoch(train_loss=float(loss.detach()))


@pytest.fixture
def net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    return model, torch.optim.SGD(model.parameters(), lr=0.1), torch.randn(250, 10), torch.randint(0, 3, (250,))


def test_samples_hold_what_torch_measures(net, tmp_path):
    model, opt, x, y = net
    path = tmp_path / "stats.jsonl"
    first = model[0].weight.detach().clone()
    with Doctor(model, opt, every=5, record=path) as doctor:
        # the first sample's numbers, by hand with torch, from the same start
        out = model(x[:25])
        pre = model[2](model[1](model[0](x[:25])))
        loss = nn.functional.cross_entropy(out, y[:25])
        loss.backward()
        expected_grad = model[0].weight.grad.pow(2).mean().sqrt().item()
        expected_hist = torch.histc(pre.detach().clamp(-4, 4), HIST_BINS, -4, 4).tolist()
        opt.zero_grad()
        _loop(model, opt, doctor, x, y)
    samples = read_stats(path)
    assert [s["step"] for s in samples] == [0, 5, 10, 15]
    assert [s["epoch"] for s in samples] == [1, 1, 2, 2]
    s0 = samples[0]
    assert s0["layers"]["0"]["grad_rms"] == pytest.approx(expected_grad, rel=1e-5)
    assert s0["layers"]["0"]["weight_rms"] == pytest.approx(first.pow(2).mean().sqrt().item(), rel=1e-5)
    # the update that followed: SGD's step is lr * grad, so |dw| / |w| = 0.1 * grad_rms / weight_rms
    assert s0["layers"]["0"]["update"] == pytest.approx(0.1 * expected_grad / s0["layers"]["0"]["weight_rms"],
                                                        rel=1e-3)
    tanh = s0["activations"]["3"]
    assert tanh["kind"] == "tanh" and tanh["hist"] == [round(v) for v in expected_hist]
    assert sum(tanh["hist"]) == 25 * 32
    assert s0["activations"]["1"]["kind"] == "relu" and 0 <= s0["activations"]["1"]["dead_batch"] <= 1
    assert all(s["non_finite"] == 0 for s in samples)


def test_non_finite_values_are_written_and_counted(net, tmp_path):
    model, opt, x, y = net
    path = tmp_path / "stats.jsonl"
    with Doctor(model, opt, every=5, record=path) as doctor:
        _loop(model, opt, doctor, x, y, epochs=1, batches=3)
        with torch.no_grad():
            model[2].weight.fill_(math.inf)
        loss = nn.functional.cross_entropy(model(x[:25]), y[:25])
        opt.zero_grad()
        loss.backward()
        doctor.observe(loss, inputs=x[:25], targets=y[:25])
    raw = path.read_text().splitlines()
    last = json.loads(raw[-1])  # valid JSON: the strings, not bare NaN
    assert last["step"] == 3 and last["loss"] == "NaN" and last["non_finite"] > 0
    assert math.isnan(read_stats(path)[-1]["loss"])


def test_resume_keeps_the_lines_before_the_restored_step(net, tmp_path):
    model, opt, x, y = net
    path = tmp_path / "stats.jsonl"
    with Doctor(model, opt, every=5, record=path) as doctor:
        _loop(model, opt, doctor, x, y, epochs=1)
        state = doctor.state_dict()
        _loop(model, opt, doctor, x, y, epochs=1)
    assert [s["step"] for s in read_stats(path)] == [0, 5, 10, 15]
    with Doctor(model, opt, every=5, record=path) as doctor:
        doctor.load_state_dict(state)  # back at step 10: the lines of 10 and 15 are the interrupted run's
        _loop(model, opt, doctor, x, y, epochs=1, batches=3)
    assert [s["step"] for s in read_stats(path)] == [0, 5, 10]


def test_a_fresh_doctor_starts_the_file_anew(net, tmp_path):
    model, opt, x, y = net
    path = tmp_path / "stats.jsonl"
    path.write_text('{"step": 99}\n')
    with Doctor(model, opt, every=5, record=path) as doctor:
        _loop(model, opt, doctor, x, y, epochs=1, batches=2)
    assert [s["step"] for s in read_stats(path)] == [0]


def test_a_write_error_is_a_note_not_a_stop(net, tmp_path):
    model, opt, x, y = net
    (tmp_path / "stats.jsonl").mkdir()  # cannot be opened as a file
    with Doctor(model, opt, every=5, record=tmp_path / "stats.jsonl") as doctor:
        _loop(model, opt, doctor, x, y, epochs=1)
    assert doctor.step == 10 and any("stats are not recorded" in n for n in doctor.notes)


def test_read_stats_names_a_bad_line_and_forgives_a_torn_last_one(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text('{"step": 0}\n{"step": 5}\n{"ste')
    assert [s["step"] for s in read_stats(path)] == [0, 5]
    path.write_text('{"step": 0}\nnot json\n{"step": 5}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_stats(path)


def test_recorder_writes_a_sample_once(tmp_path):
    rec = StatsRecorder(tmp_path / "s.jsonl")
    rec.start(0)
    rec.add({"step": 0, "layers": {"a": {"grad_rms": 1.0}}})
    rec.updates(["a"], [0.5])
    rec.updates(["a"], [0.7])  # no pending sample: nothing more
    rec.close()
    assert read_stats(tmp_path / "s.jsonl") == [{"step": 0, "layers": {"a": {"grad_rms": 1.0, "update": 0.5}},
                                                  "non_finite": 0}]


def test_a_pass_without_gradients_is_not_a_training_sample(net):
    """Validation, a plot's grid or the caller's own evaluation between steps leaves the doctor's window alone."""
    model, opt, x, y = net
    with Doctor(model, opt, every=1) as doctor:
        _loop(model, opt, doctor, x, y, epochs=1, batches=1)
        rows = dict(doctor.acts.alive_rows)
        with torch.no_grad():
            model(torch.randn(2304, 10))  # e.g. the playground's decision-surface grid
        assert doctor.acts.alive_rows == rows and doctor.acts.records == {}


def test_a_nan_step_keeps_no_stale_update(net, tmp_path):
    model, opt, x, y = net
    path = tmp_path / "stats.jsonl"
    with Doctor(model, opt, every=5, record=path) as doctor:
        _loop(model, opt, doctor, x, y, epochs=1, batches=6)  # steps 0-5; step 5 is sampled, its update follows
        doctor.observe(torch.tensor(float("nan")), inputs=x[:25], targets=y[:25])  # step 6: no update after it
        _loop(model, opt, doctor, x, y, epochs=1, batches=2)  # steps 7, 8
    samples = {s["step"]: s for s in read_stats(path)}
    assert "update" in samples[5]["layers"]["0"]
    assert samples[6]["loss"] != samples[6]["loss"] and "update" not in samples[6]["layers"]["0"]  # NaN, no update
