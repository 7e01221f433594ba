"""``trainwell report``: one self-contained HTML page of a run (or of several), and the live view.

* :func:`write_report` reads run directories (:mod:`trainwell.report.rundata`)
  and writes the page (:mod:`trainwell.report.page`): curves with the best
  epoch, the doctor's findings marked where they were found, per-layer
  plots from ``stats.jsonl`` (:mod:`trainwell.report.layers`), the repairs,
  the data audit, the metrics and the config.
* :func:`write_study_report` does the same for a study directory of
  ``trainwell tune`` (:mod:`trainwell.report.studydata`,
  :mod:`trainwell.report.study_page`): the optimisation history, the
  parameter importances, every trial linked to its own run's report, and the
  best config.
* :mod:`trainwell.report.serve`: ``trainwell serve``, a read-only local web
  page that lists runs and follows a running one.

Nothing in a run directory is changed but the report file itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text
from trainwell.report.page import document, render_run, render_runs
from trainwell.report.rundata import RUN_FILES, RunFiles, is_run, load_run
from trainwell.report.study_page import render_study
from trainwell.report.studydata import StudyFiles, is_study, load_study
from trainwell.selection.study_files import OUTPUT_FILES, STUDY_FILE

__all__ = ["REPORT_FILE", "RunFiles", "StudyFiles", "load_run", "load_study", "render_report", "write_report",
           "write_study_report"]

REPORT_FILE = "report.html"
_STUDY_LINKED = ("trials.csv", "summary.json", "best.yaml", "history.png", "importance.png")


def render_report(runs: Sequence[RunFiles]) -> str:
    """The whole page of ``runs`` (one: its report; more: compared)."""
    if len(runs) == 1:
        return document(f"trainwell report: {runs[0].name}", render_run(runs[0]))
    return document(f"trainwell report: {len(runs)} runs", render_runs(runs))


def write_report(run_dirs: str | Path | Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write the report of one run (default ``RUN/report.html``) or of several (``out`` needed); return its path.

    A study directory of ``trainwell tune``, given alone, gets its study's page (:func:`write_study_report`).

    Raises:
        TrainwellError: a directory that is not a run, an output that would overwrite a run's own file,
            or one that cannot be written.
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise TrainwellError("give at least one run directory")
    if any(is_study(d) for d in dirs):
        if len(dirs) > 1:
            raise TrainwellError("a study's report shows one study: give its directory alone")
        return write_study_report(dirs[0], out)
    runs = [load_run(d) for d in dirs]
    if out is None and len(dirs) > 1:
        raise TrainwellError("a report of several runs needs --out FILE")
    path = _checked_out(dirs[0] / REPORT_FILE if out is None else Path(out))
    _write(path, render_report(runs))
    return path


def write_study_report(study_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write a study's page (default ``STUDY/report.html``) and each trial's own report; return the page's path.

    A trial's report (``trial-N/report.html``) is written when it has none or the run's files are newer, so
    writing the page again costs only the trials that changed. The page links each trial to it.

    Raises:
        TrainwellError: not a study, a study with no finished trial, or an output that cannot be written or
            would overwrite one of the study's files.
    """
    study = load_study(study_dir)
    path = _checked_out(study.dir / REPORT_FILE if out is None else Path(out))
    links = {}
    for t in study.trials:
        run_dir = study.dir / t.run_dir
        if t.run_dir and is_run(run_dir):
            links[f"{t.run_dir}/{REPORT_FILE}"] = _href(_trial_report(run_dir), path.parent)
    links.update({name: _href(study.dir / name, path.parent) for name in _STUDY_LINKED
                  if (study.dir / name).is_file()})
    _write(path, document(f"trainwell study: {study.name}", render_study(study, links)))
    return path


def _trial_report(run_dir: Path) -> Path:
    """``run_dir/report.html``, written unless it is newer than every file of the run."""
    path = run_dir / REPORT_FILE
    newest = max(((run_dir / name).stat().st_mtime_ns for name in RUN_FILES if (run_dir / name).is_file()),
                 default=0)
    if not path.is_file() or path.stat().st_mtime_ns < newest:
        _write(path, render_report([load_run(run_dir)]))
    return path


def _href(target: Path, base: Path) -> str:
    """``target`` relative to the page's directory ``base``, as a URL path."""
    return quote(Path(os.path.relpath(target.resolve(), base.resolve())).as_posix())


def _checked_out(path: Path) -> Path:
    if path.is_dir():
        raise TrainwellError(f"--out {path} is a directory; give a file name")
    if path.name in (*RUN_FILES, STUDY_FILE, *OUTPUT_FILES) or path.suffix in (".safetensors", ".pt"):
        raise TrainwellError(f"--out {path} would overwrite a run's or a study's file; give another name, "
                             "e.g. report.html")
    if not path.parent.is_dir():
        raise TrainwellError(f"--out {path}: its directory does not exist")
    return path


def _write(path: Path, page: str) -> None:
    try:
        atomic_write_text(path, page)
    except OSError as err:
        raise TrainwellError(f"cannot write {path}: {err.strerror or err}") from None
