"""The losses a run records are means a row, whatever the loss's reduction: training and validation share a scale."""

import pytest
import torch
from torch import nn

from trainwell.data.datasets import Split
from trainwell.loop import Trainer, evaluate


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 5, generator=g)
    return Split(x[:192], (x[:192, 0] > 0).long()), Split(x[192:], (x[192:, 0] > 0).long())


def _fit(reduction: str):
    torch.manual_seed(0)
    train, val = _data()
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    # the summed loss's gradient is 32 times the mean's: a rate 32 times smaller takes the same steps
    lr = 0.1 / 32 if reduction == "sum" else 0.1
    return model, Trainer(model, torch.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(reduction=reduction),
                          train, val, epochs=3, batch_size=32, generator=torch.Generator().manual_seed(1)).fit()


def test_a_summed_loss_is_recorded_as_the_mean_a_row_for_training_and_validation():
    model, mean = _fit("mean")
    _, summed = _fit("sum")
    for a, b in zip(mean, summed):  # the same steps (192 rows: whole batches), the same numbers
        for key in ("train_loss", "val_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-5)
    _, val = _data()  # the oracle: torch's mean cross-entropy over the validation rows
    with torch.no_grad():
        expected = float(nn.functional.cross_entropy(model(val.x), val.y))
    assert evaluate(model, val, nn.CrossEntropyLoss(reduction="sum"), batch_size=16)["loss"] == pytest.approx(expected,
                                                                                                             rel=1e-6)
