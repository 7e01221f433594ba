"""Each preset shows the claim it names, in the 30 epochs docs/playground.md describes (a few seconds each):
trained as the playground trains it, from its config."""

import pytest

import trainwell
from trainwell.playground.knobs import PRESETS, config_of


def _findings(run, severity=("warning", "error")):
    found = run.diagnosis["findings"] + run.diagnosis.get("audit", [])
    return {f["symptom"] for f in found if f["severity"] in severity}


def _vanishing(run):
    assert "vanishing_gradients" in _findings(run) and run.metrics["test"]["accuracy"] < 0.6  # at chance


def _nan(run):
    assert run.metrics["status"] == "failed" and "nan_loss" in _findings(run)


def _dead(run):
    assert "dead_relu" in _findings(run) and "nan_loss" not in _findings(run)  # stalls, does not blow up


def _xavier(run):
    assert "bad_initialisation" in _findings(run) and run.metrics["test"]["accuracy"] > 0.9  # flagged, learns


def _he(run):
    assert "bad_initialisation" not in _findings(run, ("info", "warning", "error"))
    assert run.metrics["test"]["accuracy"] > 0.9


def _norm_on(run):
    assert run.metrics["test"]["accuracy"] > 0.85


def _norm_off(run):
    assert run.metrics["test"]["accuracy"] < 0.6


CLAIMS = {"vanishing: sigmoid, 8 layers, SGD": _vanishing, "NaN: learning rate 10 (leaky ReLU)": _nan,
          "dead units: learning rate 10 (ReLU)": _dead, "deep ReLU, Xavier start": _xavier,
          "deep ReLU, He start": _he, "batch norm on": _norm_on, "batch norm off": _norm_off}


def test_every_preset_has_its_claim_checked():
    assert sorted(CLAIMS) == sorted(p["name"] for p in PRESETS)


@pytest.mark.parametrize("preset", PRESETS, ids=[p["name"] for p in PRESETS])
def test_the_preset_shows_its_claim(preset, tmp_path):
    run = trainwell.train(config_of({**preset["knobs"], "train.epochs": 30}), out=tmp_path / "run")
    assert run.metrics["epochs_run"] == 30 or run.metrics["status"] == "failed"
    CLAIMS[preset["name"]](run)
