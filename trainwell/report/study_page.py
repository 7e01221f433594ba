"""The HTML of a study's page: the optimisation history, the parameter importances, every trial, the best config.

The history is drawn here, as the run report draws its curves, from
``trials.csv``: each complete trial's value, each pruned trial's last
reported value, the best so far, and the best trial marked ``B``. The
importances are Optuna's own ``importance.png`` (fANOVA on the complete
trials, computed once by the study), embedded as a data URI, for their
numbers are in no other file. Every string from the study's files is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

from trainwell.doctor.findings import CAUSES, SYMPTOMS
from trainwell.report.studydata import StudyFiles, TrialRow
from trainwell.report.svg import COLORS, Marker, Series, line_chart
from trainwell.selection.tune import METRICS

__all__ = ["render_study"]

esc = html.escape


def _link(links: Mapping[str, str], path: str, text: str) -> str:
    return f'<a href="{esc(links[path])}">{esc(text)}</a>' if path in links else esc(text)


def _header(study: StudyFiles, links: Mapping[str, str]) -> str:
    s = study.summary
    by_state = {state: sum(t.state == state for t in study.trials) for state in ("COMPLETE", "PRUNED", "FAIL")}
    line = s.get("line") or f"{len(study.trials)} trials: {by_state['COMPLETE']} complete, " \
        f"{by_state['PRUNED']} pruned, {by_state['FAIL']} failed"
    direction = "maximised" if METRICS.get(study.metric) == "maximize" else "minimised"
    files = " &middot; ".join(_link(links, f, f) for f in ("trials.csv", "summary.json", "best.yaml", "history.png",
                                                           "importance.png") if f in links)
    items = "".join(f"<li>{esc(n)}</li>" for n in study.notes)
    problems = "".join(f'<li class="problem">{esc(p)}</li>' for p in study.problems)
    return (f"<h1>study {esc(study.name)}</h1><p class='study-line'>{esc(str(line))}</p>"
            f"<p>{esc(study.metric)} on the validation split ({direction}) &middot; storage "
            f"{esc(str(study.marker.get('storage', '?')))} &middot; directory <code>{esc(str(study.dir))}</code></p>"
            + (f"<p>files: {files}</p>" if files else "")
            + (f"<ul class='notes'>{items}</ul>" if items else "") + (f"<ul>{problems}</ul>" if problems else ""))


def _history(study: StudyFiles) -> str:
    maximise = METRICS.get(study.metric) != "minimize"
    complete = [t for t in study.trials if t.state == "COMPLETE" and t.value is not None]
    pruned = [t for t in study.trials if t.state == "PRUNED" and t.value is not None]
    series = []
    if complete:
        best_so_far, running = [], None
        for t in complete:
            running = t.value if running is None else (max if maximise else min)(running, t.value)
            best_so_far.append(running)
        series.append(Series("complete trial", [t.number for t in complete], [t.value for t in complete],
                             COLORS[0], dots=True))
        series.append(Series("best so far", [t.number for t in complete], best_so_far, COLORS[2]))
    if pruned:
        series.append(Series("pruned trial (its last reported value)", [t.number for t in pruned],
                             [t.value for t in pruned], COLORS[7], dots=True))
    best = study.best
    markers = [Marker(float(best.number), "B", f"best: trial {best.number}, {study.metric} {best.value:.4g}", "best",
                      classes=["best-marker"])] if best else []
    chart = line_chart(series, title="optimisation history", x_label="trial", y_label=study.metric, markers=markers,
                       y_range=(0.0, 1.0) if "accuracy" in study.metric else None)
    none = "" if complete else "<p class='problem'>No trial completed: there is no best value yet.</p>"
    return (f'<section id="history"><h2>Optimisation history</h2><div class="charts">{chart}</div>{none}'
            f"<p>One point a trial, by its number. Failed trials have no value and are left out.</p></section>")


def _importance(study: StudyFiles) -> str:
    png = study.plots.get("importance")
    if png is None:
        why = "; ".join(n for n in study.notes if "importance" in n or n.startswith("no plots")) or \
            "the study directory holds no importance.png"
        body = f"<p class='problem'>No parameter importances: {esc(why)}.</p>"
    else:
        data = base64.b64encode(png).decode("ascii")
        body = (f"<figure><img class='optuna-plot' alt=\"Optuna's parameter importances\" "
                f"src='data:image/png;base64,{data}'><figcaption>Optuna's parameter importances (fANOVA on the "
                f"complete trials), as the study drew them in importance.png.</figcaption></figure>")
    return f'<section id="importance"><h2>Parameter importances</h2>{body}</section>'


def _why(t: TrialRow) -> tuple[str, str]:
    """What ended a pruned or failed trial, and its cause, as HTML."""
    i = t.info
    parts = []
    if t.state == "PRUNED":
        symptom = i.get("symptom") or ""
        if symptom:
            means = SYMPTOMS[symptom].means if symptom in SYMPTOMS else ""
            parts.append(f"<span title=\"{esc(means)}\">the doctor: {esc(symptom.replace('_', ' '))}</span>")
        else:
            parts.append(esc("the pruner (median rule)" if i.get("died_of") in ("", "pruner") else i["died_of"]))
    elif t.state == "FAIL":
        parts.append(esc(i.get("error") or i.get("died_of") or "failed"))
    if i.get("retry_of"):
        parts.append(f"retry of trial {esc(i['retry_of'])}")
    if i.get("retried_as"):
        parts.append(f"retried as trial {esc(i['retried_as'])} (not counted)")
    cause = i.get("cause") or ""
    if not cause:
        return "; ".join(parts), ""
    return "; ".join(parts), f"<span title=\"{esc(CAUSES.get(cause, cause))}\">{esc(cause.replace('_', ' '))}</span>"


def _trials(study: StudyFiles, links: Mapping[str, str]) -> str:
    best = study.best
    head = "".join(f"<th>{esc(p)}</th>" for p in study.params)
    rows = []
    for t in study.trials:
        why, cause = _why(t)
        state = t.state.lower()
        mark = ' <span class="badge best">best</span>' if best is t else ""
        report = f"{t.run_dir}/report.html" if t.run_dir else ""
        run = _link(links, report, "report") if report in links else "-"  # a trial that failed before its run began
        params = "".join(f"<td>{esc(t.params.get(p, ''))}</td>" for p in study.params)
        value = f"{t.value:.4g}" if t.value is not None else "-"
        rows.append(f'<tr class="trial{" best-trial" if best is t else ""}" id="trial-{t.number}"><td class="num">'
                    f'{t.number}</td><td><span class="badge {esc(state)}">{esc(state)}</span>{mark}</td>'
                    f'<td class="num value">{value}</td>{params}<td class="num">{esc(t.info.get("epochs", ""))}</td>'
                    f"<td>{why}</td><td>{cause}</td><td>{run}</td></tr>")
    return (f'<section id="trials"><h2>Trials</h2><table class="trials"><tr><th>trial</th><th>state</th>'
            f"<th>{esc(study.metric)}</th>{head}<th>epochs</th><th>ended by</th><th>cause</th><th>run</th></tr>"
            f'{"".join(rows)}</table></section>')


def _best(study: StudyFiles) -> str:
    best = study.best
    if best is None:
        return '<section id="best"><h2>Best config</h2><p>No trial completed: no best config.</p></section>'
    given: Any = study.summary.get("best")
    changes = given.get("changes", "") if isinstance(given, dict) and given.get("number") == best.number else ""
    text = (f"<p>Trial {best.number}, {esc(study.metric)} {best.value:.4g}"
            + (f": <code>{esc(str(changes))}</code>" if changes else "") + ".</p>")
    if study.best_yaml:
        text += (f"<p><code>trainwell train {esc(str(study.dir / 'best.yaml'))}</code> trains it again.</p>"
                 f"<pre>{esc(study.best_yaml)}</pre>")
    else:
        text += "<p class='problem'>No best.yaml in the study directory (see the notes above).</p>"
    return f'<section id="best"><h2>Best config</h2>{text}</section>'


def render_study(study: StudyFiles, links: Mapping[str, str]) -> str:
    """The body of a study's page (see :func:`trainwell.report.page.document`). ``links`` maps paths inside the
    study directory that the page may link (``trial-3/report.html``, ``trials.csv``...) to their hrefs."""
    return "".join([_header(study, links), _history(study), _importance(study), _trials(study, links),
                    _best(study)])
