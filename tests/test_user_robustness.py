"""What a new user hits (issue 24), part two: damaged checkpoints, full and read-only disks, progress, slow steps,
own data for cv, ensemble and tune."""

import pytest
import torch
from test_cli_user import one_line_error, run_cli  # tests/ is on sys.path (pytest's rootdir-less import)

import trainwell
from trainwell.loop import Callback, load_checkpoint
from trainwell.loop.checkpoint import latest_checkpoint

# 128 training rows / batch 32 = 4 updates an epoch; checkpoints every 3 updates and at each epoch's end
CONFIG = {"name": "robust", "seed": 11,
          "data": {"name": "moons", "n_samples": 200, "batch_size": 32},
          "model": {"name": "mlp", "depth": 2, "width": 16, "dropout": 0.3},
          "optim": {"name": "adam", "lr": 0.01},
          "checkpoint": {"every_steps": 3, "keep": 2},
          "train": {"epochs": 4, "progress": False}}


class Boom(Callback):
    """Ends the process's fit by an error right after update ``at`` (a crash)."""

    def __init__(self, at):
        self.at = at

    def on_after_step(self, trainer):
        if trainer.step == self.at:
            raise RuntimeError("boom")


class StartStep(Callback):
    """Records the step a fit starts from."""

    def on_fit_start(self, trainer):
        self.step, self.epoch = trainer.step, trainer.epoch


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return trainwell.train(CONFIG, out=tmp_path_factory.mktemp("ref") / "run")


def _crashed(out, at=10):
    with pytest.raises(RuntimeError, match="boom"):
        trainwell.train(CONFIG, out=out, callbacks=[Boom(at)])
    return out / "checkpoints"


def _truncate(path):
    """Cut ``path`` to half, as a copy cut short would (a new file: best.safetensors may be a link to it)."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 2])


# ----------------------------------------------------------------------------- a truncated latest checkpoint

def test_resume_falls_back_to_the_previous_intact_checkpoint(tmp_path, reference, monkeypatch, capsys):
    checkpoints = _crashed(tmp_path / "run")
    assert sorted(p.name for p in checkpoints.glob("step-*")) == ["step-000000008.safetensors",
                                                                 "step-000000009.safetensors"]
    _truncate(checkpoints / "step-000000009.safetensors")
    capsys.readouterr()
    start = StartStep()
    run = trainwell.train(resume=tmp_path / "run", callbacks=[start])
    assert (start.epoch, start.step) == (2, 8)  # the end of epoch 2, not update 9
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "step-000000009.safetensors is damaged" in err and "resuming from step-000000008.safetensors" in err
    assert "epoch 2, step 8" in err and "kept as step-000000009.safetensors.damaged" in err
    # the damaged file is kept aside (never pruned in place of a good one), and the run ends as if never stopped
    assert (checkpoints / "step-000000009.safetensors.damaged").stat().st_size > 0
    want = reference.model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in run.model.state_dict().items())
    assert run.metrics["epochs_run"] == 4


def test_resume_from_the_command_line_says_so_in_one_line_even_when_quiet(tmp_path, monkeypatch, capsys):
    checkpoints = _crashed(tmp_path / "run")
    _truncate(checkpoints / "step-000000009.safetensors")
    capsys.readouterr()
    code, out, err = run_cli(["train", "--resume", tmp_path / "run", "-q"], monkeypatch, capsys)
    assert code == 0, err
    assert err.count("\n") == 1 and "resuming from step-000000008.safetensors" in err, err


def test_resume_with_every_checkpoint_damaged_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    checkpoints = _crashed(tmp_path / "run")
    for path in checkpoints.glob("*.safetensors"):  # the step files and best.safetensors
        _truncate(path)
    capsys.readouterr()
    code, _, err = run_cli(["train", "--resume", tmp_path / "run", "-q"], monkeypatch, capsys)
    one_line_error(code, err, "no intact checkpoint in")
    assert "step-000000009.safetensors" in err
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.safetensors", "step-000000008.safetensors",
                                                              "step-000000009.safetensors"]  # nothing renamed


def test_resume_falls_back_to_the_best_state_when_no_step_file_is_intact(tmp_path):
    checkpoints = _crashed(tmp_path / "run")
    best = load_checkpoint(checkpoints / "best.safetensors")["trainer"]["step"]
    for path in checkpoints.glob("step-*.safetensors"):
        _truncate(path)
    start = StartStep()
    trainwell.train(resume=tmp_path / "run", callbacks=[start])
    assert start.step == best


def test_a_checkpoint_of_another_config_is_not_skipped(tmp_path):
    """A mismatch of config is the user's doing (an edited config.yaml): refused, not fallen back from."""
    checkpoints = _crashed(tmp_path / "run")
    text = (tmp_path / "run" / "config.yaml").read_text()
    (tmp_path / "run" / "config.yaml").write_text(text.replace("epochs: 4", "epochs: 5"))
    with pytest.raises(trainwell.TrainwellError, match="another config"):
        trainwell.train(resume=tmp_path / "run")
    assert latest_checkpoint(checkpoints).name == "step-000000009.safetensors"
