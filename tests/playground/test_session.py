"""The playground's session: the knobs are config keys, play/pause/step/reset do what they say, the doctor watches."""

import json
import time

import pytest

from trainwell.config import ConfigError, load_config
from trainwell.errors import TrainwellError
from trainwell.playground import Session
from trainwell.playground.knobs import BASE, KNOBS, PRESETS, config_of
from trainwell.playground.session import GRID

QUICK = {"data.n_samples": 200, "train.epochs": 400}


def wait(session, test, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        snap = json.loads(session.snapshot)
        if snap and test(snap):
            return snap
        assert time.monotonic() < deadline, f"timed out; last snapshot: {str(snap)[:300]}"
        time.sleep(0.05)


@pytest.fixture
def session(tmp_path):
    s = Session(tmp_path)
    s.configure(QUICK)
    yield s
    s.close()


def test_every_knob_is_a_config_key_and_every_preset_is_valid():
    for key, knob in KNOBS.items():
        value = knob["choices"][-1] if knob["kind"] == "choice" else knob["max"]
        cfg = config_of({**knob.get("when", {}), key: value}).model_dump()
        for part in key.split("."):
            cfg = cfg[part]
        assert cfg == value, key  # the knob's value is the config's, at that key
    for preset in PRESETS:
        assert set(preset["knobs"]) <= set(KNOBS) and preset["lab"]
        config_of(preset["knobs"])
    base = config_of({})
    assert base.model.depth == BASE["model.depth"] and base.checkpoint.every_epochs is None


def test_bad_knobs_are_one_line(session):
    for bad, words in (({"nope": 1}, "not a playground knob"), ({"model.width": 500}, "allows 1 to 64"),
                       ({"model.activation": "nope"}, "unknown activation"),
                       ({"data.path": "/etc/passwd"}, "not a playground knob")):
        with pytest.raises(ConfigError, match=words):
            session.configure(bad)


def test_paused_until_played_then_step_is_one_epoch(session):
    first = wait(session, lambda s: s["generation"] == session.generation)
    assert first["state"] == "paused" and first["epoch"] == 0
    assert len(first["surface"]["class"]) == GRID * GRID and len(first["surface"]["p"]) == GRID * GRID
    time.sleep(0.5)
    assert json.loads(session.snapshot)["epoch"] == 0  # paused: nothing trains
    session.control("step")
    snap = wait(session, lambda s: s["epoch"] == 1 and s["state"] == "paused")
    time.sleep(0.5)
    assert json.loads(session.snapshot)["epoch"] == 1 and snap["history"]["epoch"] == [1]
    session.control("play")
    snap = wait(session, lambda s: s["epoch"] >= 20)
    losses = snap["history"]["train_loss"]
    assert losses[-1] < losses[0]  # it learns
    tests = snap["history"]["test_loss"]  # the test split, measured after every epoch
    assert len(tests) == len(losses) and all(isinstance(v, float) for v in tests) and tests[-1] < tests[0]
    session.control("pause")
    time.sleep(0.3)
    held = json.loads(session.snapshot)["epoch"]
    time.sleep(0.5)
    assert json.loads(session.snapshot)["epoch"] == held
    session.control("reset")
    wait(session, lambda s: s["epoch"] == 0 and s["generation"] == session.generation)


def test_the_doctor_finds_the_broken_preset_and_its_remedy_applies(session):
    nan = next(p for p in PRESETS if p["name"].startswith("NaN"))
    session.configure({**nan["knobs"], **QUICK})
    session.control("play")
    snap = wait(session, lambda s: any(f["symptom"] == "nan_loss" for f in s.get("findings", [])) or
                s["state"] == "done")
    found = {f["symptom"]: i for i, f in enumerate(snap["findings"])}
    assert "nan_loss" in found and "learning_rate_too_high" in found
    before = session.config.optim.lr
    changes = session.apply_remedy(found["learning_rate_too_high"])
    assert any(c.startswith("optim.lr") for c in changes) and session.config.optim.lr < before
    assert session.knobs["optim.lr"] == session.config.optim.lr


def test_export_reruns_the_same_config(session, tmp_path):
    session.configure({"model.activation": "tanh", "model.depth": 3, **QUICK})
    path = tmp_path / "exported.yaml"
    path.write_text(session.export())
    assert load_config(path) == session.config


def test_an_uploaded_csv_is_read_by_trainwells_loader(session):
    rows = "\n".join(f"{i % 7 - 3},{(i * 3) % 5 - 2},{i % 2}" for i in range(120))
    session.upload_csv("x1,x2,label\n" + rows + "\n", {})
    points = json.loads(session.points)
    assert points["classes"] == 2 and len(points["train"]) + len(points["test"]) < 120
    good = session.config.data.path
    assert good is not None and good.startswith(str(session.workdir))
    with pytest.raises(TrainwellError, match="2 features"):
        session.upload_csv("a,b,c,label\n" + "\n".join(f"{i},{i},{i},{i % 2}" for i in range(60)) + "\n", {})
    with pytest.raises(TrainwellError):
        session.upload_csv("1,2,0\n1,x,1\n", {})
    assert session.config.data.path == good  # a refused upload keeps the data before it


def test_nothing_is_written_outside_its_directory(tmp_path):
    before = set(tmp_path.parent.iterdir())
    s = Session(tmp_path)
    s.configure(QUICK)
    s.control("play")
    wait(s, lambda snap: snap.get("epoch", 0) >= 3)
    s.close()
    assert set(tmp_path.parent.iterdir()) == before
    assert all(str(p).startswith(str(tmp_path)) for p in tmp_path.rglob("*"))


def test_the_surface_is_drawn_in_the_points_space(session):
    """The surface's cell under each training point predicts what the model does there: after training, the label."""
    session.control("play")
    snap = wait(session, lambda s: s.get("epoch", 0) >= 40)
    session.control("pause")
    points = json.loads(session.points)
    x0, x1, y0, y1 = points["range"]
    n, cls = snap["surface"]["n"], snap["surface"]["class"]
    agree = [cls[round((y1 - y) / (y1 - y0) * (n - 1)) * n + round((x - x0) / (x1 - x0) * (n - 1))] == c
             for x, y, c in points["train"]]
    assert sum(agree) / len(agree) > 0.9 and snap["history"]["val_accuracy"][-1] > 0.9
