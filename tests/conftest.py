import os
import shutil

import pytest
import torch

# Tests use a fixed thread count so that timing noise and results are the same everywhere.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def tiny_config():
    """A run that trains in well under a second: moons, a small MLP, a few epochs."""
    return {"name": "tiny", "seed": 3,
            "data": {"name": "moons", "n_samples": 200, "batch_size": 32},
            "model": {"name": "mlp", "depth": 2, "width": 16, "dropout": 0.0},
            "optim": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 4, "progress": False}}


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` are long runs with a quick twin that always runs; TRAINWELL_FULL=1 runs them too."""
    if os.environ.get("TRAINWELL_FULL") == "1":
        return
    skip = pytest.mark.skip(reason="slow: its quick version ran; TRAINWELL_FULL=1 runs this one")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _chromium() -> str | None:
    return os.environ.get("TRAINWELL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, driven by Playwright (nothing is downloaded); skipped, saying why, where there is none."""
    path = _chromium()
    if path is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; or set TRAINWELL_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'trainwell[browser]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(args) -> (exit code, stdout, stderr)`` of the ``trainwell`` command, in this process."""
    import sys

    from trainwell.cli import main

    def run(args):
        monkeypatch.setattr(sys, "argv", ["trainwell", *map(str, args)])
        with pytest.raises(SystemExit) as info:
            main()
        captured = capsys.readouterr()
        return info.value.code or 0, captured.out, captured.err

    return run

