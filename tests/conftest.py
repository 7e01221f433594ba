import os

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
