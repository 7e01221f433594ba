"""A run directory's files, read for a picture: never written, never trained, never unpickled.

Every file is optional but one: a directory holding none of ``config.yaml``,
``history.jsonl`` or ``stats.jsonl`` is not a run (a hand-written loop with
``Doctor(record=...)`` may leave only the last). A file that cannot be read
is a problem said on the page, not an error: the rest is still shown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainwell.doctor.record import read_stats
from trainwell.errors import TrainwellError

__all__ = ["RUN_FILES", "RunFiles", "is_run", "load_run", "signature"]

RUN_FILES = ("config.yaml", "history.jsonl", "metrics.json", "diagnosis.json", "stats.jsonl")
_MARKS = ("config.yaml", "history.jsonl", "stats.jsonl")


@dataclass
class RunFiles:
    """What a run directory holds, as read."""

    dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    diagnosis: dict[str, Any] = field(default_factory=dict)
    stats: list[dict[str, Any]] | None = None
    stats_problem: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        name = self.config.get("name") if isinstance(self.config, dict) else None
        return str(name) if name else self.dir.name

    @property
    def status(self) -> str:
        """metrics.json's status (completed, failed, early_stopped, stopped), else ``unfinished``."""
        if self.metrics is None:
            return "unfinished"
        return str(self.metrics.get("status", "completed"))

    @property
    def findings(self) -> list[dict[str, Any]]:
        """The audit's findings (epoch 0) and the doctor's, as dicts."""
        return [f for key in ("audit", "findings") for f in _list(self.diagnosis.get(key)) if isinstance(f, dict)]

    @property
    def repairs(self) -> list[dict[str, Any]]:
        return [r for r in _list(self.diagnosis.get("repairs")) if isinstance(r, dict)]

    @property
    def planned_epochs(self) -> int | None:
        train = self.config.get("train") if isinstance(self.config, dict) else None
        epochs = train.get("epochs") if isinstance(train, dict) else None
        return epochs if isinstance(epochs, int) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_run(directory: Path) -> bool:
    return directory.is_dir() and any((directory / name).is_file() for name in _MARKS)


def _history(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            epoch = json.loads(line)  # bare NaN / Infinity, as Python writes them, are read as floats
        except ValueError:
            if i < len(lines):
                problems.append(f"history.jsonl line {i} is not JSON: left out")
            continue  # the last line of an interrupted write
        if isinstance(epoch, dict):
            if not finite(epoch.get("epoch")):  # a line without its number is drawn where it stands
                epoch = {**epoch, "epoch": len(out) + 1}
            out.append(epoch)
    return out


def _json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _yaml(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    value = yaml.safe_load(text)
    return text, value if isinstance(value, dict) else {}


def load_run(directory: str | Path, follow_links: bool = True) -> RunFiles:
    """Read the run in ``directory``; without ``follow_links`` (the live view), a file that is a symbolic
    link is not read (it could lead out of the served directory).

    Raises:
        TrainwellError: no such directory, or one that holds no run.
    """
    d = Path(directory)
    if not d.is_dir():
        raise TrainwellError(f"run directory not found: {d}")
    if not is_run(d):
        raise TrainwellError(f"{d} is not a run directory (it has no config.yaml, history.jsonl or stats.jsonl)")
    run = RunFiles(d)
    for name in ("config.yaml", "history.jsonl", "metrics.json", "diagnosis.json"):
        path = d / name
        if not path.is_file():
            continue
        if not follow_links and path.is_symlink():
            run.problems.append(f"{name} is a link: not read")
            continue
        try:
            if name == "config.yaml":
                run.config_text, run.config = _yaml(path)
            elif name == "history.jsonl":
                run.history = _history(path, run.problems)
            elif name == "metrics.json":
                run.metrics = _json(path)
            else:
                run.diagnosis = _json(path)
        except (OSError, ValueError, UnicodeDecodeError, yaml.YAMLError) as err:
            run.problems.append(f"{name} cannot be read ({_one_line(err)}): left out")
    path = d / "stats.jsonl"
    if not follow_links and path.is_symlink():
        run.stats_problem = "stats.jsonl is a link: not read"
    elif not path.is_file():
        run.stats_problem = "no stats.jsonl: the run was trained without doctor.record (or before it existed)"
    else:
        try:
            run.stats = read_stats(path)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            run.stats_problem = f"stats.jsonl cannot be read ({_one_line(err)})"
        else:
            if not run.stats:
                run.stats_problem = "stats.jsonl holds no samples yet"
    return run


def signature(directory: Path) -> str:
    """Sizes and modification times of the run's files: changes whenever the run writes (the live view)."""
    parts = []
    for name in RUN_FILES:
        try:
            st = (directory / name).stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{name}:-")
    return "|".join(parts)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
