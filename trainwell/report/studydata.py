"""A study directory of ``trainwell tune``, read for its page: never written, its storage never opened.

The page is drawn from the files the study wrote when its workers were done
(:mod:`trainwell.selection.study_files`): ``study.json`` (the marker),
``trials.csv`` (every trial), ``summary.json`` (counts, the best trial,
notes), ``best.yaml`` and Optuna's plots. So it needs no Optuna, and it is
the same on every machine that sees the directory. ``trials.csv`` is the one
file a page cannot do without; any other that is missing or unreadable is a
problem said on the page.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainwell.errors import TrainwellError
from trainwell.selection.study_files import STUDY_FILE, TRIAL_COLUMNS, read_marker
from trainwell.selection.tune import METRICS

__all__ = ["FINISHED", "StudyFiles", "TrialRow", "is_study", "load_study"]

FINISHED = ("COMPLETE", "PRUNED", "FAIL")
_PLOTS = ("history", "importance")
_PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class TrialRow:
    """One line of ``trials.csv``: ``params`` and ``info`` (epochs, died_of, symptom, cause, error, retry_of,
    retried_as, dir...) as the file spells them."""

    number: int
    state: str
    value: float | None
    params: dict[str, str]
    info: dict[str, str]

    @property
    def run_dir(self) -> str:
        """Its run directory's name inside the study, or "" (none, or a name that is not one plain name)."""
        name = self.info.get("dir", "")
        return name if name and Path(name).name == name and name not in (".", "..") else ""


@dataclass
class StudyFiles:
    """What a study directory holds, as read."""

    dir: Path
    marker: dict[str, Any]
    trials: list[TrialRow]
    params: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    best_yaml: str = ""
    plots: dict[str, bytes] = field(default_factory=dict)  # "history", "importance": PNG bytes
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.marker.get("study") or self.dir.name)

    @property
    def metric(self) -> str:
        return str(self.marker.get("metric") or self.summary.get("metric") or "val_accuracy")

    @property
    def notes(self) -> list[str]:
        """The summary's notes, then its trials' distinct errors (each with ``error: ``)."""
        notes, errors = self.summary.get("notes"), self.summary.get("errors")
        return [str(n) for n in (notes if isinstance(notes, list) else [])] + \
            [f"error: {e}" for e in (errors if isinstance(errors, list) else [])]

    @property
    def best(self) -> TrialRow | None:
        """The best complete trial: the summary's (Optuna's choice), else the first with the best value."""
        complete = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        given = self.summary.get("best")
        chosen = given.get("number") if isinstance(given, dict) else None
        for t in complete:
            if t.number == chosen:
                return t
        if not complete:
            return None
        sign = -1.0 if METRICS.get(self.metric) == "minimize" else 1.0
        return max(complete, key=lambda t: (sign * t.value, -t.number))


def is_study(directory: Path) -> bool:
    return directory.is_dir() and (directory / STUDY_FILE).is_file()


def _value(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rows(path: Path) -> tuple[list[TrialRow], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        head = reader.fieldnames or []
        if head[:3] != ["number", "state", "value"]:
            raise ValueError(f"its header starts {head[:3]}, not number, state, value")
        params = [c for c in head[3:] if c not in TRIAL_COLUMNS]
        rows = [TrialRow(int(r["number"]), str(r["state"]), _value(r["value"] or ""),
                         {p: r.get(p) or "" for p in params}, {c: r.get(c) or "" for c in TRIAL_COLUMNS})
                for r in reader]
    return sorted(rows, key=lambda t: t.number), params


def load_study(directory: str | Path) -> StudyFiles:
    """Read the study in ``directory``.

    Raises:
        TrainwellError: not a study directory, no readable ``trials.csv``, or no trial finished yet.
    """
    d = Path(directory)
    marker = read_marker(d)
    if marker is None:
        raise TrainwellError(f"{d} is not a study directory ({STUDY_FILE} is missing or not JSON)")
    if not (d / "trials.csv").is_file():
        raise TrainwellError(f"the study {marker.get('study')!r} in {d} has no trials.csv yet: trainwell tune "
                             "writes it when its workers are done")
    try:
        trials, params = _rows(d / "trials.csv")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as err:
        raise TrainwellError(f"{d / 'trials.csv'} cannot be read: {str(err).splitlines()[0] if str(err) else err!r}"
                             ) from None
    if not any(t.state in FINISHED for t in trials):
        raise TrainwellError(f"the study {marker.get('study')!r} in {d} has no finished trial yet "
                             f"({len(trials)} in trials.csv, none complete, pruned or failed): nothing to report")
    study = StudyFiles(d, marker, trials, params)
    try:
        summary = json.loads((d / "summary.json").read_text(encoding="utf-8"))
        study.summary = summary if isinstance(summary, dict) else {}
    except FileNotFoundError:
        study.problems.append("no summary.json: the counts below are trials.csv's")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        study.problems.append(f"summary.json cannot be read ({type(err).__name__}): left out")
    try:
        study.best_yaml = (d / "best.yaml").read_text(encoding="utf-8")
    except FileNotFoundError:
        pass  # said in the summary's notes, or no trial completed
    except (OSError, UnicodeDecodeError) as err:
        study.problems.append(f"best.yaml cannot be read ({type(err).__name__}): left out")
    for key in _PLOTS:
        path = d / f"{key}.png"
        if path.is_file():
            data = path.read_bytes()
            if data.startswith(_PNG):
                study.plots[key] = data
            else:
                study.problems.append(f"{path.name} is not a PNG image: left out")
    return study
