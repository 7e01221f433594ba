"""``stats.jsonl``: the doctor's per-layer measurements, one line per sampled step.

On each sampled step (every ``every``-th) the doctor measures, per layer,
what its rules judge. With ``Doctor(..., record=path)`` (trainwell's trainer
passes ``RUN/stats.jsonl``) each sample becomes one JSON line::

    {"step": 40, "epoch": 3, "non_finite": 0,
     "layers": {"net.0": {"grad_rms": 0.012, "weight_rms": 0.071, "update": 0.0009}, ...},
     "activations": {"net.1": {"kind": "relu", "mean": 0.41, "std": 0.62, "pre_std": 0.98,
                               "dead_batch": 0.02, "state_grad": 0.003, "hist": [0, 3, ...]}, ...},
     "time": {"gru": {"first": 1e-05, "last": 0.002}}}

* ``grad_rms``, ``weight_rms``: RMS of the layer's weight gradient and weights.
* ``update``: ``|dw| / |w|`` of the update that followed the sample (the
  gradient's share; see :class:`~trainwell.doctor.probes.UpdateProbe`).
* per activation: its input's (the pre-activation's) std, the share of
  saturated units (sigmoid, tanh), of units dead on the whole batch (ReLU),
  the RMS of the back-propagated (state) gradient, and on every :data:`HIST_EVERY`-th sample its output's ``mean`` and ``std``
  and ``hist``: the pre-activation's histogram, :data:`HIST_BINS` bins over
  :data:`HIST_RANGE`, values outside counted in the end bins, each of at most
  :data:`HIST_VALUES` values (the batch's first rows'). Where the input
  to a ReLU sits is where its units die; to a sigmoid or tanh, where they
  saturate (the picture of fastai's ``color_dim``, for every activation).
* ``time``: per recurrent layer, the RMS of the gradient at its first and
  last time step's input.

Non-finite numbers are written as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (JSON has no such numbers) and counted in ``non_finite``:
they are the blow-up a user needs to see, and are never dropped.
:func:`read_stats` reads them back as floats.

A resumed run keeps the lines of the steps before its checkpoint and drops
those the interrupted run wrote after it; a fresh one starts the file anew.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["HIST_BINS", "HIST_EVERY", "HIST_RANGE", "HIST_VALUES", "StatsRecorder", "read_stats"]

HIST_BINS = 40
HIST_RANGE = (-4.0, 4.0)
HIST_VALUES = 4096  # enough for a 40-bin picture; a batch's 32k values cost 4x the time (histc: 84 vs 20 us)
HIST_EVERY = 5  # samples between histograms (and output mean/std): every 50 steps at the default every=10
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode(value: Any, count: list[int]) -> Any:
    """JSON-ready values: non-finite floats as strings (counted)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        count[0] += 1
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _encode(v, count) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, count) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class StatsRecorder:
    """Appends the doctor's samples to ``path``; a sample waits for the update that follows it.

    Args:
        path: the JSON-lines file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: Any = None
        self._pending: dict[str, Any] | None = None
        self.failed: str | None = None  # why recording stopped (a full disk must not stop the training)

    def start(self, step: int) -> None:
        """Open the file: keep the lines of steps before ``step`` (a resume), drop the rest (0: a new file)."""
        self.close()
        kept = []
        if step > 0 and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] < step:
                        kept.append(line + "\n")
                except (ValueError, KeyError, TypeError):  # a torn last line of an interrupted run
                    break
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
            self._file.write("".join(kept))
            self._file.flush()
        except OSError as err:
            self._fail(err)

    def add(self, sample: dict[str, Any]) -> None:
        """A new sample; the previous one is written now."""
        self.flush()
        self._pending = sample

    def updates(self, names: list[str], ratios: list[float]) -> None:
        """The update sizes of the step after the pending sample."""
        if self._pending is not None:
            for name, ratio in zip(names, ratios):
                self._pending.setdefault("layers", {}).setdefault(name, {})["update"] = ratio
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        sample, self._pending = self._pending, None
        if self._file is None:
            return
        text = json.dumps({**sample, "non_finite": 0})
        if "NaN" in text or "Infinity" in text:  # rare (or a layer so named): the careful encoding
            count = [0]
            encoded = _encode(sample, count)
            text = json.dumps({**encoded, "non_finite": count[0]}, allow_nan=False)
        try:
            self._file.write(text + "\n")
            self._file.flush()
        except OSError as err:
            self._fail(err)

    def _fail(self, err: OSError) -> None:
        self.failed = f"stats are not recorded: cannot write {self.path}: {err.strerror or err}"
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        self._file = None

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            try:
                self._file.close()
            except OSError as err:
                self._fail(err)
            self._file = None


def read_stats(path: str | Path) -> list[dict[str, Any]]:
    """The samples of a ``stats.jsonl``, non-finite strings as floats.

    Raises:
        OSError: the file cannot be read.
        ValueError: a line that is not a sample (its number said); a last line torn by an interrupted
            write is left out instead.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    samples = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
            if not isinstance(sample, dict) or not isinstance(sample.get("step"), int):
                raise ValueError("no step")
        except ValueError as err:
            if i == len(lines):
                break
            raise ValueError(f"line {i} is not a stats sample ({err})") from None
        samples.append(_decode(sample))
    return samples
