"""``trainwell lab report DIR``: one plain, self-contained HTML page of a lab run.

Every experiment with its claim, source, criterion, verdict, key numbers and its
plots embedded as data URIs (no file or network access when opened). Every
string from result.json is HTML-escaped. The page is made by the same
machinery as a run's report (:func:`trainwell.report.page.document`: its
styles and its Content-Security-Policy).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text
from trainwell.lab.base import Experiment
from trainwell.lab.result import Result
from trainwell.report.page import document

__all__ = ["render", "render_experiment", "write_report"]


def _results(directory: Path) -> list[Result]:
    if not directory.is_dir():
        raise TrainwellError(f"{directory} is not a directory written by `trainwell lab run`")
    found = []
    for path in sorted(directory.glob("*/result.json")):
        try:
            found.append(Result.read(path.parent))
        except (OSError, ValueError, TypeError) as err:
            raise TrainwellError(f"cannot read {path}: {err}") from None
    if not found:
        raise TrainwellError(f"no experiment results (NAME/result.json) in {directory}")
    return found


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def render(results: list[Result], title: str = "trainwell lab") -> str:
    """The page's HTML for ``results`` (each result's PNGs read from its directory)."""
    e = html.escape
    rows = "".join(f'<tr><td><a href="#{e(r.name)}">{e(r.name)}</a></td><td><span class="badge {e(r.verdict)}">'
                   f"{e(r.verdict)}</span></td><td>{r.seconds:.1f} s</td></tr>" for r in results)
    parts = [f"<h1>{e(title)}</h1><table><tr><th>experiment</th><th>verdict</th><th>time</th></tr>{rows}</table>"]
    for r in results:
        images = "".join(_image(p) for p in sorted(r.dir.glob("*.png"))) if r.dir else ""
        parts.append(
            f'<section id="{e(r.name)}"><h2>{e(r.name)} <span class="badge {e(r.verdict)}">{e(r.verdict)}</span></h2>'
            f"<p><b>Claim.</b> {e(r.claim)}</p><p><b>Source.</b> {e(r.source)}</p>"
            + (f"<p><b>Set-up.</b> {e(r.setup)}</p>" if r.setup else "")
            + f"<p><b>Criterion.</b> {e(r.criterion)}</p><p><b>Why this verdict.</b> {e(r.reason)}</p>"
            f"<p>seeds {e(json.dumps(r.seeds))}, quick {e(str(r.quick).lower())}, {r.seconds:.1f} s</p>{images}"
            + (f"<details><summary>error</summary><pre>{e(r.error)}</pre></details>" if r.error else "")
            + "</section>")
    return document(title, "\n".join(parts))


def render_experiment(experiment: Experiment) -> str:
    """The page of one experiment before any run: its claim, source, set-up, criterion and how to run it."""
    e = html.escape
    body = (f"<h1>lab: {e(experiment.name)}</h1><p><b>Claim.</b> {e(experiment.claim)}</p>"
            f"<p><b>Source.</b> {e(experiment.source)}</p>"
            + (f"<p><b>Set-up.</b> {e(experiment.setup)}</p>" if experiment.setup else "")
            + f"<p><b>Criterion.</b> {e(experiment.criterion)}</p>"
            f"<p><b>Run it.</b> <code>trainwell lab run {e(experiment.name)}</code> (add <code>--quick</code> for a "
            "short version): it measures the claim, judges it by the criterion and draws its plots.</p>")
    return document(f"trainwell lab: {experiment.name}", body)


def write_report(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write the HTML page of the lab run in ``directory`` (default ``directory/report.html``); return its path."""
    directory = Path(directory)
    results = _results(directory)
    path = Path(output) if output is not None else directory / "report.html"
    if path.is_dir():
        raise TrainwellError(f"--output {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise TrainwellError(f"--output {path}: its directory does not exist")
    atomic_write_text(path, render(results, f"trainwell lab: {directory.name}"))
    return path
