"""The README's Quick start is what CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_lines():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip()]


def _ci_commands():
    """The commands of .ci/run, less the set-up lines and the Debian packages the tests need."""
    return [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.startswith(("#", "set ", "cd ")) and "apt-get install" not in line]


def test_quick_start_is_two_lines_and_ci_runs_line_two():
    lines = _quick_start_lines()
    assert len(lines) == 2
    assert "trainwell train" in lines[0] and "pytest" in lines[1]
    assert _ci_commands()[0] == lines[1]
    for line in lines:
        assert "-c constraints.txt" in line  # never a CUDA build of torch


def test_ci_then_builds_the_docs_strictly():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    docs = _ci_commands()[1:]
    assert len(docs) == 1, "CI runs the tests, then one docs build"
    assert "-c constraints.txt" in docs[0] and "'.[docs]'" in docs[0]  # the extra from PyPI; torch stays pinned
    assert "mkdocs build --strict" in docs[0]  # a warning (broken link, bad reference) fails CI


def test_constraints_pin_the_cpu_build():
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert "torch==2.13.0+cpu" in pins
