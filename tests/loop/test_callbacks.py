"""StopAtTarget: the loop stops at the first epoch that reaches the target, and says which."""

import pytest
import torch
from torch import nn

from trainwell.data.datasets import Split
from trainwell.loop import StopAtTarget, Trainer


def _trainer(callbacks, epochs=50):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    y = (x[:, 0] > 0).long()  # separable by one linear layer
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    return Trainer(model, opt, nn.functional.cross_entropy, Split(x, y), Split(x, y), epochs=epochs,
                   batch_size=16, callbacks=callbacks, generator=g)


def test_stop_at_target_stops_at_the_first_epoch_that_reaches_it():
    stop = StopAtTarget("val_accuracy", 0.95)
    trainer = _trainer([stop])
    history = trainer.fit()
    accs = [h["val_accuracy"] for h in history]
    first = next(i for i, a in enumerate(accs, 1) if a >= 0.95)  # by hand, from the history
    assert stop.reached_epoch == first == len(history) < 50
    assert all(a < 0.95 for a in accs[:-1])


def test_stop_at_target_on_a_loss_and_when_never_reached():
    loss_stop = StopAtTarget("val_loss", 0.3)  # auto: a loss goes down
    assert loss_stop.mode == "min"
    history = _trainer([loss_stop]).fit()
    assert history[-1]["val_loss"] <= 0.3 and all(h["val_loss"] > 0.3 for h in history[:-1])
    never = StopAtTarget("val_accuracy", 1.5)
    assert len(_trainer([never], epochs=3).fit()) == 3 and never.reached_epoch is None
    assert StopAtTarget("val_accuracy", 0.5).state_dict() == {"reached_epoch": None}


def test_stop_at_target_refuses_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        StopAtTarget("val_loss", 0.1, mode="lower")
    with pytest.raises(ValueError, match="finite"):
        StopAtTarget("val_loss", float("nan"))
