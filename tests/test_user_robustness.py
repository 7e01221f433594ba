"""What a new user hits (issue 24), part two: damaged checkpoints, full and read-only disks, progress, slow steps,
own data for cv, ensemble and tune."""

import errno
import os
from pathlib import Path

import pytest
import torch
from test_cli_user import one_line_error, run_cli  # tests/ is on sys.path (pytest's rootdir-less import)

import trainwell
from trainwell.loop import Callback, load_checkpoint
from trainwell.loop.checkpoint import latest_checkpoint, latest_intact_checkpoint

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


# ----------------------------------------------------------------------------- full disk, read-only --out

# What safetensors raises when a write hits a full disk (measured on a 200 KiB tmpfs): not an OSError
NO_SPACE = "Error while serializing: I/O error: No space left on device (os error 28)"


def _disk_full_after(monkeypatch, writes, raise_as):
    """safetensors' writes fail with ENOSPC after ``writes`` successful ones; the failed write leaves half a
    temporary file, as a real full disk does."""
    import safetensors.torch
    from safetensors import SafetensorError

    from trainwell.loop import checkpoint as ck

    monkeypatch.setattr(ck.time, "sleep", lambda s: None)  # the retries do not wait
    real, calls = safetensors.torch.save_file, [0]

    def save_file(tensors, path, metadata=None):
        calls[0] += 1
        if calls[0] > writes:
            Path(path).write_bytes(b"partial")
            raise (SafetensorError(NO_SPACE) if raise_as == "safetensors"
                   else OSError(errno.ENOSPC, "No space left on device"))
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)


@pytest.mark.parametrize("raise_as", ["safetensors", "oserror"])
def test_a_full_disk_in_the_checkpoint_writer_is_one_line_and_keeps_the_checkpoints(raise_as, tmp_path,
                                                                                     monkeypatch, capsys):
    """best.safetensors on (the default): the failed write's file must not be linked as the best afterwards."""
    _disk_full_after(monkeypatch, 2, raise_as)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--set", "data.name=moons", "--set", "data.n_samples=200",
                            "--set", "data.batch_size=32", "--set", "model.width=8", "--set", "train.epochs=4",
                            "--set", "checkpoint.every_steps=3", "--out", out, "-q"], monkeypatch, capsys)
    one_line_error(code, err, "No space left on device")
    assert "FileNotFoundError" not in err and "SafetensorError" not in err and "os error" not in err
    assert "cannot write checkpoint " in err and ".safetensors" in err and "earlier checkpoints are intact" in err
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert not any(name.endswith(".tmp") for name in files)  # the half-written file is gone
    assert [n for n in files if n.startswith("step-")] == ["step-000000003.safetensors", "step-000000004.safetensors"]
    for name in files:
        load_checkpoint(out / "checkpoints" / name)
    assert latest_intact_checkpoint(out / "checkpoints").skipped == []


def test_a_full_disk_writing_the_model_file_is_one_line(tmp_path, monkeypatch, capsys):
    import safetensors.torch
    from safetensors import SafetensorError

    real = safetensors.torch.save_file

    def save_file(tensors, path, metadata=None):
        if ".model.safetensors." in path:  # the model's temporary file
            raise SafetensorError(NO_SPACE)
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--set", "data.name=moons", "--set", "model.width=8", "--set", "train.epochs=2",
                            "--out", out, "-q"], monkeypatch, capsys)
    one_line_error(code, err, f"cannot write {out / 'model.safetensors'}: No space left on device")
    assert latest_intact_checkpoint(out / "checkpoints").skipped == []


def test_a_full_disk_writing_a_run_file_names_the_file(tmp_path, monkeypatch):
    """Any file of the run (here metrics.json, written through io.atomic_write_text) is named, not its
    temporary file, and the error is a TrainwellError (the CLI's one line, exit code 2)."""
    from trainwell import io

    real = io.os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".metrics.json."):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    out = tmp_path / "run"
    with pytest.raises(trainwell.TrainwellError) as info:
        trainwell.train({**CONFIG, "train": {"epochs": 1, "progress": False}}, out=out)
    assert str(info.value).startswith(f"cannot write {out / 'metrics.json'}: No space left on device")
    assert not list(out.glob(".*.tmp"))


def test_a_read_only_out_directory_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """An existing empty --out on a read-only mount (root ignores chmod, so the file system's answer is faked)."""
    from trainwell.runs import directory

    out = tmp_path / "empty"
    out.mkdir()
    real = directory.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == out:
            raise OSError(errno.EROFS, "Read-only file system", str(Path(dir) / ".probe"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(directory.tempfile, "mkstemp", read_only)
    code, _, err = run_cli(["train", "--set", "data.name=moons", "--out", out, "-q"], monkeypatch, capsys)
    one_line_error(code, err, f"cannot write to {out}: Read-only file system")
    assert list(out.iterdir()) == []


def test_a_full_disk_leaves_no_half_line_in_the_history_and_names_it(tmp_path, monkeypatch):
    """A real full disk takes part of a write and then refuses (measured on a tmpfs): the line is taken back."""
    from trainwell.loop import HistoryFile
    from trainwell.loop import callbacks

    real, calls = callbacks.os.write, [0]

    def write(fd, data):
        calls[0] += 1
        if calls[0] == 2:  # the second epoch's line: half of it goes in, then the disk is full
            return real(fd, bytes(data[: len(data) // 2]))
        if calls[0] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(callbacks.os, "write", write)

    class Logs:
        logs = {"epoch": 1, "train_loss": 0.5}

    history = HistoryFile(tmp_path / "history.jsonl")
    history.on_fit_start(Logs)
    history.on_epoch_end(Logs)
    with pytest.raises(OSError) as info:
        history.on_epoch_end(Logs)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "history.jsonl")
    assert (tmp_path / "history.jsonl").read_text() == '{"epoch": 1, "train_loss": 0.5}\n'


# ----------------------------------------------------------------------------- the progress bar

def _small_trainer(callbacks, epochs=3, rows=96, batch_size=16):
    from trainwell.data import Split
    from trainwell.loop import Trainer

    torch.manual_seed(0)
    x = torch.randn(rows, 4)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return Trainer(net, torch.optim.SGD(net.parameters(), lr=0.1), torch.nn.functional.cross_entropy,
                   Split(x, (x[:, 0] > 0).long()), Split(x[:16], (x[:16, 0] > 0).long()), epochs=epochs,
                   batch_size=batch_size, callbacks=callbacks, generator=torch.Generator().manual_seed(0))


class _Completed(Callback):
    """The bar's task after each batch and epoch: (epoch, batch) -> (completed, total, the fields shown)."""

    def __init__(self, bar):
        self.bar, self.seen = bar, {}

    def _note(self, trainer, batch):
        task = self.bar._progress.tasks[0]
        self.seen[(trainer.epoch, batch)] = (task.completed, task.total, dict(task.fields))

    def on_batch_end(self, trainer):
        self._note(trainer, trainer.batch + 1)

    def on_epoch_end(self, trainer):
        self._note(trainer, "end")


def _console():
    from rich.console import Console

    return Console(record=True, force_terminal=True, width=160, file=open(os.devnull, "w"))


def test_the_progress_bar_advances_per_batch_and_shows_the_epoch_the_batch_and_an_eta():
    from trainwell.loop import ProgressBar

    console = _console()
    bar = ProgressBar("run", console=console, refresh_interval=0)  # every batch: what a slow step shows
    seen = _Completed(bar)
    _small_trainer([bar, seen]).fit()  # 96 rows / 16 = 6 batches an epoch, 18 in all
    assert seen.seen[(0, 1)][:2] == (1, 18) and seen.seen[(0, 6)][:2] == (6, 18)
    assert seen.seen[(1, 3)][0] == 9 and seen.seen[(3, "end")][0] == 18  # at its end, trainer.epoch counts it
    assert seen.seen[(1, 3)][2]["where"] == "epoch 2/3 batch 3/6"
    assert seen.seen[(1, 3)][2]["status"].startswith("loss ")  # epoch 1's numbers, shown once it ended
    assert seen.seen[(2, "end")][2]["where"] == "epoch 2/3 batch 6/6"
    text = console.export_text()
    assert "epoch 3/3 batch 6/6" in text and "0:00:00" in text  # the ETA column (done: nothing remains)


def test_the_progress_bar_updates_at_most_every_refresh_interval_and_never_reads_the_loss(monkeypatch):
    """With an interval longer than the test (an hour) only the epochs' ends update the bar: a step never pays
    for it, and the bar reads nothing from the device (the batch's loss would sync it)."""
    from trainwell.loop import ProgressBar

    bar = ProgressBar("run", console=_console(), refresh_interval=3600)
    updates = []
    real_start = bar.on_fit_start

    def start(trainer):
        real_start(trainer)
        real_update = bar._progress.update
        bar._progress.update = lambda *a, **k: (updates.append(k.get("completed")), real_update(*a, **k))

    monkeypatch.setattr(bar, "on_fit_start", start)
    _small_trainer([bar]).fit()
    assert updates == [6, 12, 18]
    # a batch's update reads the position alone: a trainer without a loss or an output (on any device) will do
    from types import SimpleNamespace

    bar.refresh_interval, bar._next_update = 0, 0
    bar.on_fit_start(SimpleNamespace(steps_per_epoch=6, epochs=3, epoch=0, progress=None))
    bar.on_batch_end(SimpleNamespace(epoch=0, batch=2, epochs=3))
    assert bar._progress.tasks[0].completed == 3
    bar.on_fit_end(None)


def test_the_progress_bar_starts_where_a_resumed_epoch_stopped():
    from trainwell.loop import ProgressBar

    bar = ProgressBar("run", console=_console(), refresh_interval=0)
    seen = _Completed(bar)
    trainer = _small_trainer([bar, seen])
    trainer.epoch, trainer.progress = 1, {**trainer._start_epoch(), "next_batch": 4}  # as a resume sets them
    trainer.fit()
    assert min(c for c, _, _ in seen.seen.values()) == 11  # epoch 2's 5th batch: 6 + 5


# ----------------------------------------------------------------------------- the doctor's note on slow steps

class FakeSeconds(Callback):
    """Sets each epoch's ``seconds`` (before the doctor reads them): ``per_update[e]`` seconds an update in epoch e
    (from 1), 0.1 s otherwise; the trainer's own clock is not read, so nothing here depends on timing."""

    def __init__(self, per_update):
        self.per_update = per_update

    def on_epoch_end(self, trainer):
        trainer.logs["seconds"] = self.per_update.get(trainer.epoch, 0.1) * trainer.steps_per_epoch


def _doctor_notes(per_update, epochs=8):
    from trainwell.doctor import DoctorCallback

    doctor = DoctorCallback(every=2)
    _small_trainer([FakeSeconds(per_update), doctor], epochs=epochs).fit()
    return doctor.doctor.notes, doctor.doctor.findings


SLOW = "slower than at the start: another process is competing for the CPU, or the data loader is the bottleneck"


def test_the_doctor_notes_steps_that_became_several_times_slower():
    notes, findings = _doctor_notes({6: 0.6, 7: 0.6, 8: 0.7})  # 6x from epoch 6 on
    slow = [n for n in notes if SLOW in n]
    assert len(slow) == 1, notes  # once, when the second slow epoch confirms it
    assert slow[0].startswith(f"steps are 6× {SLOW}") and "100 ms an update in the first 3 epochs" in slow[0]
    assert "600 ms in epochs 6-7" in slow[0]
    assert not any(SLOW in str(f) for f in findings)  # a note on the machine, not a finding about the model


@pytest.mark.parametrize("per_update", [
    {5: 0.6},              # one slow epoch (a backup, a burst of another job): not held
    {1: 0.8},              # a slow first epoch (measured 8.6x: start-up, warm-up): not the start's pace
    {6: 0.25, 7: 0.25, 8: 0.25},  # 2.5x: near what a busy machine's own noise reaches (2.2x held, measured)
], ids=["one-epoch", "slow-first-epoch", "2.5-fold"])
def test_the_doctor_does_not_note_noise(per_update):
    notes, _ = _doctor_notes(per_update)
    assert not any(SLOW in n for n in notes), notes


def test_the_doctor_does_not_note_epochs_too_short_to_matter():
    """6x slower epochs of a few milliseconds: timer noise is a large share of them, and they cost nothing."""
    from trainwell.doctor import Doctor

    model = torch.nn.Linear(2, 2)
    doctor = Doctor(model, torch.optim.SGD(model.parameters(), lr=0.1))
    for epoch in range(1, 9):
        for _ in range(4):
            doctor.observe(torch.tensor(0.5))
        doctor.end_epoch(train_loss=0.5, seconds=4 * (0.006 if epoch >= 6 else 0.001))
    assert not any(SLOW in n for n in doctor.notes), doctor.notes


# ----------------------------------------------------------------------------- own data for cv, ensemble and tune

SMALL = ["--set", "model.width=8", "--set", "model.depth=1", "--set", "train.epochs=2"]


@pytest.fixture
def moons_file(tmp_path):
    """200 rows of moons with a header and the label named `class`, in the middle (so --target matters)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(200, noise=0.2, random_state=0)
    path = tmp_path / "moons.csv"
    path.write_text("x1,class,x2\n" + "".join(f"{a},{c},{b}\n" for (a, b), c in zip(x.tolist(), y.tolist())))
    return path


def _recorded(run_dir):
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())["data"]


def _is_the_file(data, path):
    import hashlib

    assert data["name"] == "custom" and data["path"] == str(path.resolve()) and data["target"] == "class"
    assert data["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and data["shape"] == [200, 2]


def test_cv_on_a_csv_file(moons_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the file given by a relative path: the runs record it absolute
    code, out, err = run_cli(["cv", "--data", moons_file.name, "--target", "class", "--folds", "2", *SMALL,
                              "--out", tmp_path / "cv"], monkeypatch, capsys)
    assert code == 0, err
    assert "chosen epochs" in out
    for fold in ("fold-0", "fold-1"):
        _is_the_file(_recorded(tmp_path / "cv" / fold), moons_file)


def test_an_ensemble_on_a_csv_file_trains_and_evaluates(moons_file, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["ensemble", "--data", moons_file, "--target", "class", "--members", "2", *SMALL,
                              "--out", tmp_path / "ens"], monkeypatch, capsys)
    assert code == 0, err
    assert "ensemble (average)" in out
    members = sorted(p for p in (tmp_path / "ens").iterdir() if p.is_dir())
    assert len(members) == 2
    for member in members:
        _is_the_file(_recorded(member), moons_file)
    code, out, err = run_cli(["evaluate", tmp_path / "ens"], monkeypatch, capsys)
    assert code == 0 and "rows: 40" in out, err  # the file's own test split: 20% of 200


def test_tune_on_a_csv_file(moons_file, tmp_path, monkeypatch, capsys):
    pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed")
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {choice: [0.01, 0.05]}\n")
    code, out, err = run_cli(["tune", "--data", moons_file, "--target", "class", "--space", space, "--trials", "2",
                              "--sampler", "grid", *SMALL, "--out", tmp_path / "study", "-q"], monkeypatch, capsys)
    assert code == 0, err
    assert "2 trials: 2 complete" in out
    import yaml

    _is_the_file(yaml.safe_load((tmp_path / "study" / "best.yaml").read_text())["data"], moons_file)


@pytest.mark.parametrize("command", ["cv", "ensemble", "tune"])
def test_bad_data_for_cv_ensemble_and_tune_is_one_line_and_writes_nothing(command, moons_file, tmp_path,
                                                                          monkeypatch, capsys):
    extra = ["--space", moons_file] if command == "tune" else []  # tune checks its data before its space
    out = tmp_path / "out"
    code, _, err = run_cli([command, "--data", "nosuchset", *extra, "--out", out], monkeypatch, capsys)
    one_line_error(code, err, "'nosuchset' is neither a data set (mnist1d, digits")
    code, _, err = run_cli([command, "--data", tmp_path / "missing.csv", *extra, "--out", out], monkeypatch, capsys)
    one_line_error(code, err, "data file not found")
    code, _, err = run_cli([command, "--data", "moons", "--target", "class", *extra, "--out", out], monkeypatch,
                           capsys)
    one_line_error(code, err, "--target names a column of your own .csv file")
    code, _, err = run_cli([command, "--data", moons_file, "--target", "label", *extra, "--out", out], monkeypatch,
                           capsys)
    one_line_error(code, err, "has no column 'label'; its columns: x1, class, x2")
    assert not out.exists()
