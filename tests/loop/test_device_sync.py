"""No host-device synchronisation per step in the trainer (issue 22).

The running training loss and accuracy are summed on the device and read back
once, at the end of the epoch. On CUDA the steps of an epoch run under
``torch.cuda.set_sync_debug_mode("error")``, which raises on any forced
synchronisation (``.item()``, ``float()``, a blocking copy to the host); those
tests are skipped where there is no GPU. On the CPU the epoch's figures are
checked against a hand-written loop that reads every step's loss on the host.
"""

import pytest
import torch
import torch.nn.functional as F

from trainwell.data import Split
from trainwell.loop import Callback, Checkpoint, Trainer, load_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device (the per-step sync check runs where a GPU is lent)")


def _data(device, rows=200, features=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=g)
    return Split(x.to(device), (x[:, 0] - x[:, 1] > 0).long().to(device))


def _model(device, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
                               torch.nn.Dropout(0.1), torch.nn.Linear(32, 2)).to(device)


class SyncsRaise(Callback):
    """From the first batch's start to the last batch's end of each epoch, a host-device sync raises.

    Between those points lie the batch loads, every forward, backward and
    update, and the running sums. Put it first so that it brackets the others.
    """

    def __init__(self):
        self.steps = 0

    def on_batch_start(self, trainer):
        if trainer.batch == 0:
            torch.cuda.set_sync_debug_mode("error")

    def on_batch_end(self, trainer):
        self.steps += 1
        if trainer.batch == trainer.steps_per_epoch - 1:
            torch.cuda.set_sync_debug_mode("default")

    def on_fit_end(self, trainer):
        torch.cuda.set_sync_debug_mode("default")


@needs_cuda
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_no_sync_during_the_steps_on_cuda(optimizer):
    net = _model("cuda")
    opt = (torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=1e-3))
    guard = SyncsRaise()
    history = Trainer(net, opt, F.cross_entropy, _data("cuda"), _data("cuda", 64, seed=1), epochs=3,
                      batch_size=32, callbacks=[guard]).fit()
    assert guard.steps == 3 * 7 and len(history) == 3
    assert all(0 < h["train_loss"] < 5 and 0 <= h["train_accuracy"] <= 1 for h in history)


@needs_cuda
def test_the_checkpoint_snapshot_does_not_sync_and_the_file_holds_the_saved_weights(tmp_path):
    at_save = {}

    class NoSyncCheckpoint(Checkpoint):
        def save(self, trainer, path=None, *, wait=False):
            self.wait()  # the previous write is done: what is left is the snapshot itself
            torch.cuda.synchronize()
            at_save[trainer.step] = {k: v.cpu() for k, v in trainer.model.state_dict().items()}
            torch.cuda.set_sync_debug_mode("error")
            try:
                return super().save(trainer, path, wait=wait)
            finally:
                torch.cuda.set_sync_debug_mode("default")

    net = _model("cuda")
    cb = NoSyncCheckpoint(tmp_path, "cfg", every_epochs=1, best=False, keep=5)
    Trainer(net, torch.optim.Adam(net.parameters(), lr=1e-2), F.cross_entropy, _data("cuda"), epochs=3,
            batch_size=32, callbacks=[SyncsRaise(), cb]).fit()
    for step, weights in at_save.items():  # the copies queued without waiting were complete when written
        state = load_checkpoint(tmp_path / f"step-{step:09d}.safetensors", "cfg")
        assert all(torch.equal(state["model"][k], v) for k, v in weights.items()), step


def test_epoch_figures_equal_a_hand_written_loop_reading_every_step():
    """The device-side running sums give the numbers a per-step ``.item()`` loop gives."""
    data, bs = _data("cpu"), 32
    net_a, net_b = _model("cpu"), _model("cpu")
    opt_a = torch.optim.SGD(net_a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(net_b.parameters(), lr=0.1, momentum=0.9)
    torch.manual_seed(5)
    history = Trainer(net_a, opt_a, F.cross_entropy, data, epochs=3, batch_size=bs,
                      generator=torch.Generator().manual_seed(3)).fit()
    torch.manual_seed(5)  # dropout draws the same masks
    g = torch.Generator().manual_seed(3)
    for epoch in range(3):
        order, loss_sum, correct = torch.randperm(len(data), generator=g), 0.0, 0
        for start in range(0, len(data), bs):
            idx = order[start:start + bs]
            xb, yb = data.x[idx], data.y[idx]
            out = net_b(xb)
            loss = F.cross_entropy(out, yb)
            opt_b.zero_grad()
            loss.backward()
            opt_b.step()
            loss_sum += loss.item() * len(yb)  # a sync per step: what the trainer must not do on a GPU
            correct += int((out.argmax(1) == yb).sum())
        assert history[epoch]["train_loss"] == pytest.approx(loss_sum / len(data), rel=1e-12, abs=1e-12)
        assert history[epoch]["train_accuracy"] == correct / len(data)
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(a, b)
