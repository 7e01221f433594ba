"""A quick slice of the sick-run benchmark (benchmarks/doctor/run.py runs all of it)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks" / "doctor"))
sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

from cases import HEALTHY, SICK  # noqa: E402
from run import diagnose  # noqa: E402

CASES = {c.name: c for c in SICK + HEALTHY}
QUICK = ["mlp-sigmoid-8-digits", "mlp-sgd-lr50-digits", "mlp-naive-ce-digits", "digits-nan-rows",
         "moons-leaky", "mlp-relu-moons", "mlp-relu-digits", "cnn-relu-digits"]


@pytest.mark.parametrize("name", QUICK)
def test_the_doctor_names_what_was_injected_and_nothing_else(name, tmp_path):
    case = CASES[name]
    result = diagnose(case, tmp_path / "run")
    found = {f.symptom for f in result["findings"]}
    assert case.expect <= found, [str(f) for f in result["findings"]]
    assert found <= case.expect | case.allow, [str(f) for f in result["findings"]]
    if case.cause:
        assert next(f for f in result["findings"] if f.symptom == "nan_loss").cause == case.cause


def test_the_benchmark_has_the_cases_the_issue_asks_for():
    families = {c.config["model"]["name"] for c in SICK}
    assert len(SICK) >= 40 and len(HEALTHY) >= 20 and {"mlp", "cnn", "gru"} <= families
