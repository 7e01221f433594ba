"""``trainwell report``: one self-contained HTML page of a run (or of several), and the live view.

* :func:`write_report` reads run directories (:mod:`trainwell.report.rundata`)
  and writes the page (:mod:`trainwell.report.page`): curves with the best
  epoch, the doctor's findings marked where they were found, per-layer
  plots from ``stats.jsonl`` (:mod:`trainwell.report.layers`), the repairs,
  the data audit, the metrics and the config.
* :mod:`trainwell.report.serve`: ``trainwell serve``, a read-only local web
  page that lists runs and follows a running one.

Nothing in a run directory is changed but the report file itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text
from trainwell.report.page import document, render_run, render_runs
from trainwell.report.rundata import RUN_FILES, RunFiles, load_run

__all__ = ["REPORT_FILE", "RunFiles", "load_run", "render_report", "write_report"]

REPORT_FILE = "report.html"


def render_report(runs: Sequence[RunFiles]) -> str:
    """The whole page of ``runs`` (one: its report; more: compared)."""
    if len(runs) == 1:
        return document(f"trainwell report: {runs[0].name}", render_run(runs[0]))
    return document(f"trainwell report: {len(runs)} runs", render_runs(runs))


def write_report(run_dirs: str | Path | Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write the report of one run (default ``RUN/report.html``) or of several (``out`` needed); return its path.

    Raises:
        TrainwellError: a directory that is not a run, an output that would overwrite a run's own file,
            or one that cannot be written.
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise TrainwellError("give at least one run directory")
    runs = [load_run(d) for d in dirs]
    if out is None:
        if len(dirs) > 1:
            raise TrainwellError("a report of several runs needs --out FILE")
        path = dirs[0] / REPORT_FILE
    else:
        path = Path(out)
    if path.is_dir():
        raise TrainwellError(f"--out {path} is a directory; give a file name")
    if path.name in RUN_FILES or path.suffix in (".safetensors", ".pt"):
        raise TrainwellError(f"--out {path} would overwrite a run's file; give another name, e.g. report.html")
    if not path.parent.is_dir():
        raise TrainwellError(f"--out {path}: its directory does not exist")
    try:
        atomic_write_text(path, render_report(runs))
    except OSError as err:
        raise TrainwellError(f"cannot write {path}: {err.strerror or err}") from None
    return path
