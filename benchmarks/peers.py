"""Side by side with the trainers users pick: the same training in six ways, interleaved in one process.

The same model (same initial weights), data, optimizer (trainwell's adam, as
``trainwell train`` builds it), batch size, epochs and so steps, in:

1. ``hand``: a hand-written PyTorch loop (shuffle, slice mini-batches from the
   tensors, forward, loss, backward, step, running loss/accuracy kept on the
   device, a validation pass each epoch);
2. ``Trainer``: trainwell's :class:`~trainwell.loop.Trainer`, no callbacks;
3. ``trainwell train``: the whole run as the CLI does it (``trainwell.train``
   with the doctor on, a checkpoint every epoch and on the best, history file,
   metrics, diagnosis, saved model), given the loaded data;
4. ``Lightning``: PyTorch Lightning's ``Trainer`` with its defaults (checkpointing
   and logging on) fed the usual ``DataLoader(TensorDataset, shuffle=True)``;
   only the progress bar and model summary are off (console output);
5. ``Lightning bare``: the same with checkpointing and logging off;
6. ``Lightning sliced``: as 5, fed batches sliced from the tensors like 1-3
   (what is left is the loop's own cost).

Each round runs every way once (the order rotates), timing the fit (from
fit start to fit end) and the whole call (set-up and files included). The
first round warms up and is dropped. Printed: ms per step of the fit and of the
call, and the median over rounds of each round's ratio to the hand-written
loop. Also the loaders alone: one epoch of batches sliced from tensors vs one
of ``DataLoader(TensorDataset)``.

Models: the default MLP (3 x 256, dropout 0.2) on MNIST-1D, and the default
CNN (3 stride-2 1-D conv layers of 128 channels).

Needs the ``bench`` extra (``pip install -c constraints.txt -e .[bench]``).

    python benchmarks/peers.py [--rounds 6] [--threads 1] [--models mlp,cnn]
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

import trainwell
from _common import add_threads_argument, apply_threads, machine
from trainwell.config import load_config
from trainwell.loop import Callback, Trainer
from trainwell.models import build_model
from trainwell.optim import build_optimizer
from trainwell.runs.prepare import configured_data

MODELS = {"mlp": ([], 8), "cnn": (["model.name=cnn"], 2)}  # overrides, epochs per run


class Setup:
    """One model's config, data, initial weights and a way to build fresh copies of them."""

    def __init__(self, overrides: list[str], epochs: int) -> None:
        self.overrides = [*overrides, f"train.epochs={epochs}", "train.progress=false"]
        self.cfg = load_config(None, self.overrides)
        self.data = configured_data(self.cfg.data)
        self.epochs, self.bs = epochs, self.cfg.data.batch_size
        self.steps = epochs * -(-len(self.data.train) // self.bs)
        self.initial = None
        grab = _Initial()  # the weights `trainwell train` starts from: every other way starts from them too
        trainwell.train(self.cfg.model_dump(), overrides=["train.epochs=1"], out=Path(tempfile.mkdtemp()) / "w",
                        data=self.data, callbacks=[grab], progress=False)
        self.initial = grab.state

    def model_and_optimizer(self):
        d = self.data
        model = build_model(self.cfg.model, d.input_shape, d.n_classes, d.kind, d.mean, d.std)
        model.load_state_dict(self.initial)
        return model, build_optimizer(model, self.cfg.optim, self.cfg.reg)


class _Initial(Callback):
    def __init__(self, expected=None) -> None:
        self.expected, self.state, self.start, self.end = expected, None, None, None

    def on_fit_start(self, trainer) -> None:
        self.state = copy.deepcopy(trainer.model.state_dict())
        if self.expected is not None:
            assert all(torch.equal(self.state[k], v) for k, v in self.expected.items()), "initial weights differ"
        self.start = time.perf_counter()

    def on_fit_end(self, trainer) -> None:
        self.end = time.perf_counter()


@torch.no_grad()
def _validate(model, split) -> tuple[float, float]:
    model.eval()
    out = torch.cat([model(split.x[i:i + 4096]) for i in range(0, len(split), 4096)])
    model.train()
    return F.cross_entropy(out, split.y).item(), (out.argmax(1) == split.y).float().mean().item()


def hand(s: Setup, tmp: Path) -> tuple[float, float]:
    model, opt = s.model_and_optimizer()
    train, val, bs = s.data.train, s.data.val, s.bs
    g = torch.Generator().manual_seed(s.cfg.seed)
    start = time.perf_counter()
    for _ in range(s.epochs):
        model.train()
        order = torch.randperm(len(train), generator=g)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.long)
        for i in range(0, len(train), bs):
            idx = order[i:i + bs]
            x, y = train.x[idx], train.y[idx]
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (out.detach().argmax(1) == y).sum()
        _ = loss_sum.item() / len(train), correct.item() / len(train), _validate(model, val)
    seconds = time.perf_counter() - start
    return seconds, seconds


def trainer(s: Setup, tmp: Path) -> tuple[float, float]:
    model, opt = s.model_and_optimizer()
    start = time.perf_counter()
    Trainer(model, opt, F.cross_entropy, s.data.train, s.data.val, epochs=s.epochs, batch_size=s.bs,
            generator=torch.Generator().manual_seed(s.cfg.seed)).fit()
    seconds = time.perf_counter() - start
    return seconds, seconds


def trainwell_train(s: Setup, tmp: Path) -> tuple[float, float]:
    timer = _Initial(s.initial)
    start = time.perf_counter()
    run = trainwell.train(s.cfg.model_dump(), out=tmp / "run", data=s.data, callbacks=[timer], progress=False)
    whole = time.perf_counter() - start
    assert run.history[-1]["step"] == s.steps and (tmp / "run" / "checkpoints").is_dir()
    return timer.end - timer.start, whole


class _Sliced:
    """Mini-batches sliced from in-memory tensors in a fresh random order each pass (as trainwell's Trainer)."""

    def __init__(self, split, bs: int, seed: int) -> None:
        self.split, self.bs, self.g = split, bs, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.split) // self.bs)

    def __iter__(self):
        order = torch.randperm(len(self.split), generator=self.g)
        for i in range(0, len(order), self.bs):
            idx = order[i:i + self.bs]
            yield self.split.x[idx], self.split.y[idx]


def lightning(s: Setup, tmp: Path, defaults: bool = True, sliced: bool = False) -> tuple[float, float]:
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    model, opt = s.model_and_optimizer()

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            x, y = batch
            out = self.model(x)
            loss = F.cross_entropy(out, y)
            self.log("train_loss", loss, on_epoch=True)
            self.log("train_accuracy", (out.detach().argmax(1) == y).float().mean(), on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self.model(x)
            self.log("val_loss", F.cross_entropy(out, y))
            self.log("val_accuracy", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return opt

    class Timer(L.Callback):
        def on_fit_start(self, trainer, module) -> None:
            self.start = time.perf_counter()

        def on_fit_end(self, trainer, module) -> None:
            self.end = time.perf_counter()

    train, val = s.data.train, s.data.val
    if sliced:
        train_loader, val_loader = _Sliced(train, s.bs, s.cfg.seed), _Sliced(val, 4096, 0)
    else:
        train_loader = DataLoader(TensorDataset(train.x, train.y), batch_size=s.bs, shuffle=True,
                                  generator=torch.Generator().manual_seed(s.cfg.seed))
        val_loader = DataLoader(TensorDataset(val.x, val.y), batch_size=4096)
    timer = Timer()
    start = time.perf_counter()
    pl = L.Trainer(max_epochs=s.epochs, accelerator="cpu", devices=1, default_root_dir=tmp, callbacks=[timer],
                   enable_progress_bar=False, enable_model_summary=False,
                   **({} if defaults else {"enable_checkpointing": False, "logger": False}))
    pl.fit(Module(), train_loader, val_loader)
    whole = time.perf_counter() - start
    assert pl.global_step == s.steps, (pl.global_step, s.steps)
    return timer.end - timer.start, whole


WAYS = {"hand": hand, "Trainer": trainer, "trainwell train": trainwell_train,
        "Lightning (defaults)": lightning,
        "Lightning bare": lambda s, tmp: lightning(s, tmp, defaults=False),
        "Lightning bare, sliced": lambda s, tmp: lightning(s, tmp, defaults=False, sliced=True)}


def loaders(s: Setup, rounds: int = 20) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    train = s.data.train
    sliced = _Sliced(train, s.bs, 0)
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=s.bs, shuffle=True)
    times: dict[str, list[float]] = {"sliced": [], "DataLoader": []}
    for r in range(rounds):
        for name, source in (("sliced", sliced), ("DataLoader", loader))[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            for _ in source:
                pass
            times[name].append(time.perf_counter() - start)
    a, b = statistics.median(times["sliced"]), statistics.median(times["DataLoader"])
    print(f"  loader alone, one epoch of {len(sliced)} batches of {s.bs}: sliced from tensors {1e3 * a:.2f} ms, "
          f"DataLoader(TensorDataset) {1e3 * b:.2f} ms ({b / a:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: mlp 8, cnn 2)")
    add_threads_argument(parser)
    args = parser.parse_args()
    apply_threads(args)
    warnings.filterwarnings("ignore")  # Lightning's advice (num_workers, log_every_n_steps, ...)
    import lightning
    for name in ("lightning", "lightning.pytorch", "lightning.pytorch.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "GPU available: False", tips
    print(f"machine: {machine()}, lightning {lightning.__version__}")
    for name in args.models.split(","):
        overrides, epochs = MODELS[name]
        s = Setup(overrides, args.epochs or epochs)
        loop: dict[str, list[float]] = {w: [] for w in WAYS}
        call: dict[str, list[float]] = {w: [] for w in WAYS}
        ways = list(WAYS)
        for r in range(args.rounds + 1):
            for w in ways[r % len(ways):] + ways[:r % len(ways)]:
                with tempfile.TemporaryDirectory() as tmp:
                    fit, whole = WAYS[w](s, Path(tmp))
                if r:  # round 0 warms up
                    loop[w].append(fit)
                    call[w].append(whole)
        print(f"\n{name}: {s.cfg.model.name} on {s.cfg.data.name}, batch {s.bs}, {s.steps} steps per run "
              f"({s.epochs} epochs), {args.rounds} rounds")
        print(f"  {'':24s} {'fit ms/step':>12s} {'x hand':>8s} {'call ms/step':>13s} {'x hand':>8s}")
        for w in WAYS:
            ratio = statistics.median(a / b for a, b in zip(loop[w], loop["hand"]))
            ratio_call = statistics.median(a / b for a, b in zip(call[w], call["hand"]))
            print(f"  {w:24s} {1e3 * statistics.median(loop[w]) / s.steps:12.3f} {ratio:8.3f} "
                  f"{1e3 * statistics.median(call[w]) / s.steps:13.3f} {ratio_call:8.3f}")
        loaders(s)


if __name__ == "__main__":
    main()
