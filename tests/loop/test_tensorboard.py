"""log.tensorboard: the event files read back hold the run's numbers, histograms and findings (issue 20)."""

import json
import math
import sys
import time

import numpy as np
import pytest
import torch

pytest.importorskip("tensorboard", reason="TensorBoard is not installed: pip install '.[test]' brings it")

from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util.tensor_util import make_ndarray
from torch import nn

import trainwell
from trainwell.cli import main
from trainwell.data import Split
from trainwell.doctor import Finding
from trainwell.errors import TrainwellError
from trainwell.loop import Callback, TensorBoardLogger, Trainer
from trainwell.loop.tensorboard import MISSING_TENSORBOARD, scalar_tag

TEXT = "/text_summary"  # add_text's suffix of a tag


class Shown:
    """What TensorBoard's server shows of a directory of event files: read by its own reader (the plugin
    event accumulator), with its purges of stale points, every point kept."""

    def __init__(self, directory):
        self.acc = plugin_event_accumulator.EventAccumulator(
            str(directory), size_guidance=plugin_event_accumulator.STORE_EVERYTHING_SIZE_GUIDANCE)
        self.acc.Reload()

    def tags(self, plugin):
        return sorted(self.acc.PluginTagToContent(plugin)) if plugin in self.acc.ActivePlugins() else []

    def scalars(self, tag):
        return [(e.step, float(make_ndarray(e.tensor_proto))) for e in self.acc.Tensors(tag)]

    def counts(self, tag):
        """Each histogram of ``tag``: (step, how many values it holds)."""
        return [(e.step, float(make_ndarray(e.tensor_proto)[:, 2].sum())) for e in self.acc.Tensors(tag)]

    def texts(self, tag):
        return [(e.step, make_ndarray(e.tensor_proto).ravel()[0].decode()) for e in self.acc.Tensors(tag + TEXT)]


def _shown(run_dir):
    return Shown(run_dir / "tensorboard")


def _histogram_protos(directory, tag):
    """The histograms of ``tag`` as written (min, max, sum and all), by TensorBoard's legacy reader."""
    acc = EventAccumulator(str(directory), size_guidance={"histograms": 0})
    acc.Reload()
    return [e.histogram_value for e in acc.Histograms(tag)]


def _history(run_dir):
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def _f32(x):
    return float(np.float32(x))  # a TensorBoard scalar is a float32


def _weights(model):
    return {name: p for name, p in model.named_parameters() if name.rsplit(".", 1)[-1].startswith("weight")}


def _assert_scalars_are_the_history(shown, history):
    keys = [k for k in history[0] if k not in ("epoch", "step")]
    assert shown.tags("scalars") == sorted(scalar_tag(k) for k in keys)
    for key in keys:
        assert shown.scalars(scalar_tag(key)) == [(h["step"], _f32(h[key])) for h in history], key


# ----------------------------------------------------------------------------- a run, read back

def test_the_scalars_and_histograms_read_back_are_the_runs(tiny_config, tmp_path):
    tiny_config["log"] = {"tensorboard": True}
    tiny_config["early_stopping"] = {"enabled": False}  # the model ends with its last epoch's weights, as logged
    run = trainwell.train(tiny_config, out=tmp_path / "run")
    shown = _shown(run.dir)
    history = _history(run.dir)
    steps = [h["step"] for h in history]
    assert steps == [4, 8, 12, 16]
    _assert_scalars_are_the_history(shown, history)
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"} <= set(shown.tags("scalars"))
    # a histogram of each weighted layer's weights and gradients, once an epoch, of the layer's weight count
    weights = _weights(run.model)
    assert len(weights) == 3  # two hidden layers and the output layer
    assert shown.tags("histograms") == sorted(f"{kind}/{name}" for name in weights for kind in ("weights", "gradients"))
    for name, p in weights.items():
        for kind in ("weights", "gradients"):
            assert shown.counts(f"{kind}/{name}") == [(step, p.numel()) for step in steps], name
        last = _histogram_protos(run.dir / "tensorboard", f"weights/{name}")[-1]  # the weights the run ended with
        assert (last.num, last.min, last.max) == (p.numel(), p.min().item(), p.max().item())
        assert last.sum == pytest.approx(p.double().sum().item(), rel=1e-9, abs=1e-12)
        grad = _histogram_protos(run.dir / "tensorboard", f"gradients/{name}")[-1]
        assert grad.max > grad.min  # a real gradient, not zeros
    assert shown.tags("text") == []  # a healthy run: no findings


def test_a_finding_of_the_doctor_is_there_as_text_at_its_step(tiny_config, tmp_path):
    tiny_config.update(log={"tensorboard": True}, optim={"name": "sgd", "lr": 20.0})
    run = trainwell.train(tiny_config, out=tmp_path / "run")
    findings = [Finding(**f) for f in json.loads((run.dir / "diagnosis.json").read_text())["findings"]]
    assert any(f.symptom == "divergence" for f in findings)
    written = _shown(run.dir).texts("doctor/findings")
    assert written == [(f.step, str(f)) for f in findings]
    assert any("divergence" in text and "Remedy: lower the learning rate" in text for _, text in written)


def test_a_run_without_the_key_writes_no_event_files(tiny_config, tmp_path):
    tiny_config["train"]["epochs"] = 1
    run = trainwell.train(tiny_config, out=tmp_path / "run")
    assert not (run.dir / "tensorboard").exists()


# ----------------------------------------------------------------------------- resume and repair

class Boom(Callback):
    """A crash in the middle of update ``at``."""

    def __init__(self, at):
        self.at = at

    def on_after_step(self, trainer):
        if trainer.step + 1 == self.at:
            raise RuntimeError("boom")


def _raw_steps(run_dir, tag):
    """The step of every point of ``tag`` in the event files, stale ones too."""
    steps = []
    for path in sorted((run_dir / "tensorboard").iterdir()):
        for event in EventFileLoader(str(path)).Load():
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def test_a_resumed_run_shows_each_step_once_with_the_values_of_an_uninterrupted_run(tiny_config, tmp_path):
    # checkpoints every 2 epochs (4 updates each): a crash in epoch 4 resumes from epoch 2, so the points of
    # epoch 3 written before the crash are stale
    tiny_config.update(log={"tensorboard": True}, checkpoint={"every_epochs": 2})
    whole = trainwell.train(tiny_config, out=tmp_path / "whole")
    with pytest.raises(RuntimeError, match="boom"):
        trainwell.train(tiny_config, out=tmp_path / "run", callbacks=[Boom(at=14)])
    assert _raw_steps(tmp_path / "run", "loss/train") == [4, 8, 12]
    resumed = trainwell.train(resume=tmp_path / "run")
    assert len(list((resumed.dir / "tensorboard").iterdir())) == 2  # one file per fit, in one directory
    assert _raw_steps(resumed.dir, "loss/train") == [4, 8, 12, 12, 16]  # the stale 12 is there ...
    shown, reference = _shown(resumed.dir), _shown(whole.dir)
    history = _history(resumed.dir)
    assert [h["step"] for h in history] == [4, 8, 12, 16]
    _assert_scalars_are_the_history(shown, history)  # ... but hidden: each step once
    for tag in ("loss/train", "loss/val", "accuracy/val"):
        assert shown.scalars(tag) == reference.scalars(tag), tag
    assert shown.tags("histograms") == reference.tags("histograms") != []
    for tag in shown.tags("histograms"):
        assert [s for s, _ in shown.counts(tag)] == [4, 8, 12, 16], tag
        assert [h.sum for h in _histogram_protos(resumed.dir / "tensorboard", tag)] == \
            [h.sum for h in _histogram_protos(whole.dir / "tensorboard", tag)], tag


def test_a_repaired_run_shows_its_last_attempt_and_the_repair(tiny_config, tmp_path):
    tiny_config.update(log={"tensorboard": True}, optim={"name": "sgd", "lr": 20.0}, doctor={"repair": True})
    run = trainwell.train(tiny_config, out=tmp_path / "run")
    repairs = run.diagnosis["repairs"]
    assert len(repairs) == 1 and run.config.optim.lr < 20
    assert len(list((run.dir / "tensorboard").iterdir())) == 2  # the failed attempt's file is there ...
    assert "doctor/findings" + TEXT in {v.tag for path in (run.dir / "tensorboard").iterdir()
                                        for e in EventFileLoader(str(path)).Load() for v in e.summary.value}
    shown = _shown(run.dir)
    _assert_scalars_are_the_history(shown, _history(run.dir))  # ... but hidden: its points and its findings
    assert {value for _, value in shown.scalars("lr")} == {_f32(run.config.optim.lr)}
    last = [Finding(**f) for f in run.diagnosis.get("findings", [])]  # the last attempt's findings alone
    assert shown.texts("doctor/findings") == [(f.step, str(f)) for f in last]
    r = repairs[0]
    assert shown.texts("doctor/repairs") == [(0, f"repair 1: {r['symptom']} ({r['cause']}) -> "
                                                 f"{' '.join(r['changes'])}, from scratch")]


# ----------------------------------------------------------------------------- the logger in a plain loop

def _fit(log_dir, callbacks=(), epochs=2, **logger):
    """A trainer of a linear model on 64 rows of 3 features (4 updates an epoch), the logger last."""
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    model = nn.Linear(3, 2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy,
                      Split(x, (x[:, 0] > 0).long()), epochs=epochs, batch_size=16,
                      callbacks=[*callbacks, TensorBoardLogger(log_dir, **logger)])
    return trainer


class Poison(Callback):
    """Sets one weight to NaN at the end of the first epoch (before the logger reads it)."""

    def on_epoch_end(self, trainer):
        if trainer.epoch == 1:
            with torch.no_grad():
                trainer.model.weight[0, 0] = float("nan")


def test_non_finite_values_are_counted_and_written_never_dropped(tmp_path):
    history = _fit(tmp_path / "tb", [Poison()]).fit()
    shown = Shown(tmp_path / "tb")
    # epoch 1: one weight NaN, left out of the histogram and counted; epoch 2: NaN outputs made every gradient
    # and so every weight NaN: counted, no histogram
    assert shown.counts("weights/weight") == [(4, 5)]
    assert shown.scalars("nonfinite/weights/weight") == [(4, 1), (8, 6)]
    assert shown.counts("gradients/weight") == [(4, 6)]
    assert shown.scalars("nonfinite/gradients/weight") == [(8, 6)]
    assert math.isfinite(history[0]["train_loss"]) and math.isnan(history[1]["train_loss"])
    (first, loss), (second, nan) = shown.scalars("loss/train")
    assert (first, loss, second) == (4, _f32(history[0]["train_loss"]), 8) and math.isnan(nan)  # NaN as it is


def test_text_given_before_the_fit_is_written_at_its_start_and_after_it_still_written(tmp_path):
    trainer = _fit(tmp_path / "tb", histograms=False)
    logger = trainer.callbacks[-1]
    logger.text("notes", "before")
    trainer.fit()
    logger.text("notes", "after", 7)
    shown = Shown(tmp_path / "tb")
    assert shown.texts("notes") == [(0, "before"), (7, "after")]
    assert shown.tags("histograms") == []


def test_a_new_file_is_read_after_one_opened_in_the_same_second(tmp_path):
    """Event files are read in name order, and a name starts with the second it was opened: the logger's file
    must come after an earlier one of the same second whatever the rest of the names, or its purge is undone."""
    from torch.utils.tensorboard import SummaryWriter

    old = SummaryWriter(str(tmp_path / "old"), purge_step=0)  # an earlier fit's file, as the logger writes it
    old.add_scalar("loss/train", 5.0, global_step=3)
    old.close()
    trainer = _fit(tmp_path / "tb", epochs=1, histograms=False)
    (tmp_path / "tb").mkdir()
    (file,) = (tmp_path / "old").iterdir()
    # of this second (the fit opens its file a few ms later), and after this host's names in the same second
    file.rename(tmp_path / "tb" / f"events.out.tfevents.{int(time.time()):010d}.zzzz.1.0")
    trainer.fit()
    assert [step for step, _ in Shown(tmp_path / "tb").scalars("loss/train")] == [4]  # the earlier point hidden


# ----------------------------------------------------------------------------- without TensorBoard

@pytest.fixture
def no_tensorboard(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # its import now raises ImportError


def test_without_tensorboard_the_logger_is_refused_in_one_line(no_tensorboard, tmp_path):
    with pytest.raises(TrainwellError) as info:
        TensorBoardLogger(tmp_path / "tb")
    assert str(info.value) == MISSING_TENSORBOARD == \
        "log.tensorboard needs TensorBoard: pip install 'trainwell[tensorboard]'"
    assert not (tmp_path / "tb").exists()


def test_without_tensorboard_a_run_asking_for_it_writes_nothing(no_tensorboard, tiny_config, tmp_path, monkeypatch,
                                                                capsys):
    tiny_config["log"] = {"tensorboard": True}
    with pytest.raises(TrainwellError, match="pip install 'trainwell\\[tensorboard\\]'"):
        trainwell.train(tiny_config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(sys, "argv", ["trainwell", "train", "-q", "--out", str(tmp_path / "cli"),
                                      "--set", "log.tensorboard=true"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and err == f"error: {MISSING_TENSORBOARD}\n"
    assert not (tmp_path / "cli").exists()
