"""One playground session: a trainwell run in a background thread, paused, stepped or played from the page.

The run is an ordinary :func:`trainwell.train` run, with the doctor on,
written to a temporary directory; a callback (:class:`_Controller`) holds it
between batches while the page says pause, and publishes a snapshot (the
decision surface, the curves, the doctor's last per-layer sample and its
findings) at most every :data:`FRAME` seconds. The page reads the latest
snapshot, already encoded, without waiting for the training thread, which
never waits for the page either.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from trainwell.config import Config, ConfigError, apply_overrides
from trainwell.doctor import DoctorCallback, Finding
from trainwell.errors import TrainwellError
from trainwell.loop import Callback, CancelFit, evaluate
from trainwell.playground.knobs import KNOBS, LIMITS, MAX_CLASSES, config_of
from trainwell.runs import train
from trainwell.runs.prepare import configured_data
from trainwell.runs.remedies import plan_repair

__all__ = ["FRAME", "GRID", "Session"]

FRAME = 0.04   # seconds between snapshots while playing (25 a second)
GRID = 48      # the decision surface's cells per side
MAX_CURVE = 600  # epochs of the curves sent to the page (thinned beyond)


class _Cancelled(Exception):
    """The session moved on (reset, new knobs): this run's thread ends."""


class _Controller(Callback):
    """Holds the fit while paused; publishes snapshots; ends it when the session moves on.

    After each epoch it also measures the test split (the page shows its loss beside the training and
    validation losses, as TensorFlow Playground does; nothing is chosen on it).
    """

    def __init__(self, session: Session, generation: int, test) -> None:
        self.session, self.generation, self.test = session, generation, test
        self.test_history: list[dict[str, float]] = []
        self._last = 0.0

    def _check(self) -> None:
        s = self.session
        said = False
        while True:
            if s.generation != self.generation:
                raise CancelFit
            if s.go.is_set():
                return
            if not said:  # a snapshot encoded while "pause" arrived may still say "playing": it waits, say so
                s._restate("paused", self.generation)
                said = True
            s.go.wait(0.05)

    def on_fit_start(self, trainer) -> None:
        self.session.publish(trainer, self.generation, force=True)

    def on_batch_start(self, trainer) -> None:
        self._check()

    def on_batch_end(self, trainer) -> None:
        now = time.monotonic()
        if now - self._last >= FRAME:
            self._last = now
            self.session.publish(trainer, self.generation)

    def on_fit_end(self, trainer) -> None:  # after the doctor's: its findings are complete
        self.session.publish(trainer, self.generation, force=True)

    def on_epoch_end(self, trainer) -> None:
        s = self.session
        if s.stepping and s.generation == self.generation:  # "step": one epoch, then pause
            s.stepping = False
            s.go.clear()
        measured = evaluate(trainer.model, self.test, trainer.loss_fn)
        self.test_history.append({"epoch": trainer.logs.get("epoch", trainer.epoch), "test_loss": measured["loss"],
                                  "test_accuracy": measured["accuracy"]})
        self._last = time.monotonic()
        s.publish(trainer, self.generation, force=True)


class Session:
    """The state of the playground: its knobs, its data, its run and the last snapshot."""

    def __init__(self, workdir: str | Path | None = None) -> None:
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="trainwell-playground-")
        self.workdir = Path(workdir) if workdir is not None else Path(self._tmp.name)
        self.knobs: dict[str, Any] = {}
        self.upload: Path | None = None
        self.generation = 0
        self.go = threading.Event()
        self.stepping = False
        self.state = "paused"
        self.error: str | None = None
        self.config: Config = config_of({})
        self.frames = 0  # snapshots published (the benchmark counts them)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._snapshot = b"{}"
        self._last: dict[str, Any] | None = None
        self._points = b"{}"
        self._findings: list[Finding] = []
        self.configure({})

    # ------------------------------------------------------------------ what the page asks

    def configure(self, knobs: dict[str, Any]) -> None:
        """New knobs: a new run, paused at its start.

        Raises:
            ConfigError, TrainwellError: a knob that is not one, a value out of range, data that cannot be drawn.
        """
        cfg = config_of(knobs, {"data.path": str(self.upload)} if self.upload is not None else None)
        data = configured_data(cfg.data)
        if data.input_shape != (2,) or data.kind == "sequence":
            raise TrainwellError(f"the playground draws data of 2 features; this has {list(data.input_shape)}")
        rows, most = len(data.train) + len(data.val) + len(data.test), LIMITS["data.n_samples"][1]
        if rows > most or data.n_classes > MAX_CLASSES:  # an upload: the generated sets are bounded by their knobs
            raise TrainwellError(f"the playground trains at most {most} rows of at most {MAX_CLASSES} classes "
                                 f"(labels 0 to {MAX_CLASSES - 1}); this file has {rows} rows, {data.n_classes} classes")
        with self._lock:
            self.knobs, self.config, self.error = dict(knobs), cfg, None
            self._start(data)

    def upload_csv(self, text: str, knobs: dict[str, Any]) -> None:
        """A 2-feature CSV of the user's (label last, header optional), read by trainwell's own loader."""
        path = self.workdir / f"upload-{self.generation + 1}.csv"
        path.write_text(text, encoding="utf-8")
        previous, self.upload = self.upload, path
        try:
            self.configure(knobs)
        except (ConfigError, TrainwellError):
            self.upload = previous
            raise

    def clear_upload(self, knobs: dict[str, Any]) -> None:
        self.upload = None
        self.configure(knobs)

    def control(self, action: str) -> None:
        """``play``, ``pause``, ``step`` (one epoch) or ``reset`` (the same knobs, from the start)."""
        if action == "play":
            self.stepping = False
            self.go.set()
        elif action == "pause":
            self.go.clear()
            self._restate("paused", self.generation)  # the run waits at its next batch: it publishes nothing more till then
        elif action == "step":
            self.stepping = True
            self.go.set()
        elif action == "reset":
            self.configure(self.knobs)
        else:
            raise ConfigError(f"unknown action {action!r}: play, pause, step or reset")

    def apply_remedy(self, index: int) -> list[str]:
        """Apply the remedy of finding ``index`` to the knobs: the config changes the doctor's repair would make."""
        if not 0 <= index < len(self._findings):
            raise ConfigError(f"no finding {index}")
        changes = self._remedy(self._findings[index])
        if changes is None:
            raise ConfigError("this finding has no remedy the playground's knobs can make")
        changed = apply_overrides(self.config, changes)
        knobs = dict(self.knobs)
        for change in changes:
            key = change.split("=", 1)[0].rstrip("*")
            if key.endswith("_options"):  # the old choice's options go with it
                knobs = {k: v for k, v in knobs.items() if not k.startswith(key + ".")}
            else:
                knobs[key] = _get(changed, key)
        self.configure(knobs)
        return changes

    def _remedy(self, finding: Finding) -> list[str] | None:
        """The repair's config changes for ``finding``, if every one is a knob's (or drops a choice's options)."""
        plan = plan_repair([finding], self.config)
        if plan is None:
            return None
        keys = [c.split("=", 1)[0].rstrip("*") for c in plan[1]]
        return plan[1] if all(k in KNOBS or k.endswith("_options") for k in keys) else None

    def export(self) -> str:
        """The config that ``trainwell train`` reruns."""
        text = self.config.to_yaml()
        if self.upload is not None:
            text = "# data.path is the playground's copy of your upload: point it at your own file\n" + text
        return text

    @property
    def snapshot(self) -> bytes:
        return self._snapshot

    @property
    def points(self) -> bytes:
        return self._points

    def close(self) -> None:
        self.generation += 1  # the run's thread ends at its next batch
        self.go.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------------ the run

    def _start(self, data) -> None:
        self.generation += 1
        generation = self.generation
        self.go.clear()
        self.stepping = False
        self.state = "paused"
        self._findings = []
        self._last = None
        self._points = json.dumps({"generation": generation, **_points(data)}).encode()
        self._data_range = _range(data)
        cfg = self.config
        out = self.workdir / f"run-{generation}"

        def work() -> None:
            try:
                run = train(cfg, out=out, data=data, callbacks=[_Controller(self, generation, data.test)],
                            progress=False)
            except Exception as err:  # the page shows it in one line; the server goes on
                if generation == self.generation:
                    text = str(err).splitlines()[0] if str(err) else ""
                    self.error = text if isinstance(err, TrainwellError) else f"{type(err).__name__}: {text}"
                    self._publish_error(generation)
                return
            if generation == self.generation and self._last is not None:  # the fit ended by itself
                stopped = run.metrics.get("stopped") or {}
                failed = run.metrics.get("status") == "failed"
                self.state = "failed" if failed else "done"
                error = f"stopped at epoch {stopped.get('epoch')}, step {stopped.get('step')}: " \
                        f"{stopped.get('reason')}" if failed else None
                self._snapshot = json.dumps({**self._last, "state": self.state, "error": error}).encode()

        previous = self._thread
        self._thread = threading.Thread(target=work, daemon=True, name=f"playground-run-{generation}")
        self._thread.start()
        if previous is not None:
            previous.join(timeout=0)  # it ends at its next batch (generation moved on); never waited for here

    def publish(self, trainer, generation: int, force: bool = False) -> None:
        """Encode a snapshot of the run now (training thread)."""
        if generation != self.generation:
            return
        controller = next((cb for cb in trainer.callbacks if isinstance(cb, _Controller)), None)
        tests = {t["epoch"]: t for t in controller.test_history} if controller is not None else {}
        doctor = next((cb for cb in trainer.callbacks if isinstance(cb, DoctorCallback)), None)
        findings = list(doctor.findings) if doctor is not None else []
        self._findings = findings
        sample = getattr(doctor.doctor, "last_sample", None) if doctor is not None and doctor.doctor else None
        self.state = "playing" if self.go.is_set() else "paused"
        snapshot = {
            "generation": generation, "state": self.state, "epoch": trainer.epoch, "step": trainer.step,
            "planned_epochs": trainer.epochs, "knobs": self.knobs, "upload": self.upload is not None,
            "history": _curves([{**h, **tests.get(h.get("epoch"), {})} for h in trainer.history]), "surface": _surface(trainer.model, self._data_range),
            "layers": sample, "error": None,
            "findings": [{"symptom": f.symptom, "severity": f.severity, "epoch": f.epoch, "step": f.step,
                          "layer": f.layer, "cause": f.cause, "remedy": f.remedy, "text": str(f),
                          "repairable": self._remedy(f) is not None} for f in findings]}
        self._last = _finite(snapshot)
        self._snapshot = json.dumps(self._last).encode()
        self.frames += 1

    def _restate(self, state: str, generation: int) -> None:
        """The last snapshot of run ``generation``, saying ``state`` (the run is waiting, or about to)."""
        last = self._last
        if last is not None and last.get("generation") == generation and last.get("state") in ("playing", "paused"):
            self.state = state
            self._last = {**last, "state": state}
            self._snapshot = json.dumps(self._last).encode()

    def _publish_error(self, generation: int) -> None:
        self.state = "failed"
        self._snapshot = json.dumps({"generation": generation, "state": "failed", "error": self.error,
                                     "knobs": self.knobs, "findings": [], "history": {}, "surface": None,
                                     "layers": None}).encode()


def _get(cfg: Config, key: str) -> Any:
    value: Any = cfg
    for part in key.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _range(data) -> tuple[float, float, float, float]:
    x = torch.cat([data.train.x, data.val.x, data.test.x]).float()
    lo, hi = x.min(0).values, x.max(0).values
    pad = (hi - lo).clamp_min(1e-6) * 0.1
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def _points(data) -> dict[str, Any]:
    def rows(split):
        return [[round(float(a), 4), round(float(b), 4), int(c)] for (a, b), c in zip(split.x.tolist(), split.y.tolist())]

    return {"train": rows(data.train), "test": rows(data.test), "classes": int(data.n_classes),
            "range": list(_range(data))}


@torch.no_grad()
def _surface(model: torch.nn.Module, box: tuple[float, float, float, float]) -> dict[str, Any]:
    """The predicted class and its probability at the centres of GRID x GRID cells over the data (rows from the
    top)."""
    x0, x1, y0, y1 = box
    centre = (torch.arange(GRID) + 0.5) / GRID  # each cell is judged at its centre, where the page draws it
    xs, ys = x0 + centre * (x1 - x0), y1 - centre * (y1 - y0)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)
    training = model.training
    model.eval()
    try:
        p = torch.softmax(model(grid).float(), -1)
    finally:
        model.train(training)
    conf, cls = p.max(-1)
    return {"n": GRID, "class": cls.tolist(), "p": [round(v, 3) for v in conf.nan_to_num(0.0).tolist()]}


def _curves(history: list[dict[str, Any]]) -> dict[str, list[Any]]:
    step = max(1, math.ceil(len(history) / MAX_CURVE))
    picked = history[::step] + ([history[-1]] if history and (len(history) - 1) % step else [])
    keys = ("epoch", "train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy", "test_accuracy")
    return {k: [h.get(k) for h in picked] for k in keys}
