"""The report's HTML: one self-contained page of one run, or of several side by side.

No file or network is read when the page is opened: styles are inline,
plots are inline SVG (histograms as PNG data URIs inside them), and there is
no script. Every string that comes from a run is escaped with
:func:`html.escape` (``esc`` below) before it reaches the page.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from trainwell.doctor.findings import CAUSES, SYMPTOMS
from trainwell.doctor.thresholds import Thresholds
from trainwell.report.layers import layer_section
from trainwell.report.rundata import RunFiles, finite
from trainwell.report.svg import COLORS, Marker, Series, line_chart

__all__ = ["CSS", "document", "finding_markers", "render_run", "render_runs"]

esc = html.escape
CSS = """body{font-family:system-ui,sans-serif;max-width:72em;margin:1.5em auto;padding:0 1em;color:#222}
section{border-top:1px solid #ddd;padding:.6em 0} h1{font-size:1.5em} h2{font-size:1.2em}
.badge{display:inline-block;padding:0 .45em;border-radius:3px;font-size:90%;font-weight:bold}
.error{background:#f6c6c6}.warning{background:#f8dfb8}.info{background:#d4e6f5}.completed{background:#c8f0c8}
.failed{background:#f6c6c6}.unfinished,.stopped{background:#f6ecb0}.early_stopped{background:#c8f0c8}
.confirmed{background:#c8f0c8}.refuted{background:#f6c6c6}.inconclusive{background:#f6ecb0}
.complete,.best{background:#c8f0c8}.pruned{background:#f8dfb8}.fail{background:#f6c6c6}.running,.waiting{background:
#f6ecb0} tr.best-trial td{background:#f0faf0}
.charts{display:flex;flex-wrap:wrap;gap:.5em} svg.chart{max-width:100%;height:auto;background:#fff}
table{border-collapse:collapse;margin:.4em 0} td,th{padding:.15em .6em;text-align:left;border-bottom:1px solid #eee}
td.num{text-align:right;font-variant-numeric:tabular-nums} .finding{border-left:4px solid #999;padding:.2em .8em;
margin:.6em 0}.finding.error{border-color:#c0392b;background:#fdf1f0}.finding.warning{border-color:#e67e22;
background:#fdf6ee}.finding.info{border-color:#2980b9;background:#f2f7fb}.timeline{list-style:none;padding:0}
.timeline li{border-left:3px solid #2980b9;margin:.4em 0;padding:.2em .8em} .bar{display:inline-block;height:.8em;
background:#5b8fd0} .problem{color:#8a4b00} pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;font-size:85%}
img{max-width:100%;border:1px solid #eee} img.optuna-plot{width:40em}"""


_STATIC_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def document(title: str, body: str, csp: str | None = _STATIC_CSP) -> str:
    """A whole page: ``title`` is escaped, ``body`` is HTML already escaped by its maker.

    The page's Content-Security-Policy lets it use inline styles and data-URI images only: a script that
    slipped past the escaping would not run, and the page cannot reach the network.
    """
    policy = f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">" if csp else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{policy}<title>{esc(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")


def _num(v: Any, digits: str = ".4g") -> str:
    if finite(v):
        return format(v, digits)
    return esc(str(v)) if v is not None else "-"


def finding_markers(run: RunFiles, at: str, prefix: str = "") -> list[Marker]:
    """A marker per finding of the doctor at its ``"epoch"`` or ``"step"`` (the audit's, at epoch 0, too),
    linked to its card ``#{prefix}finding-N``."""
    out = []
    for i, f in enumerate(run.findings, 1):
        x = f.get(at)
        if finite(x):
            out.append(Marker(float(x), str(i), f"{i}. {_title(f)}", str(f.get("severity", "info")),
                              href=f"#{prefix}finding-{i}", classes=["finding-marker"]))
    return out


def _title(f: dict[str, Any]) -> str:
    where = f" in {f['layer']}" if f.get("layer") else ""
    return f"[{f.get('severity')}] {str(f.get('symptom', '?')).replace('_', ' ')}{where} " \
           f"(epoch {f.get('epoch')}, step {f.get('step')})"


def _epoch_charts(run: RunFiles, prefix: str) -> str:
    h = run.history
    if not h:
        return "<p>No epochs were recorded (history.jsonl is empty or missing).</p>"
    x = [e.get("epoch", i + 1) for i, e in enumerate(h)]
    markers = finding_markers(run, "epoch", prefix)
    best = run.metrics.get("best_epoch") if run.metrics else None
    if finite(best):
        markers.append(Marker(float(best), "B", f"best epoch {best} (lowest validation loss)", "best",
                              classes=["best-marker"]))
    charts = []
    for key, label in (("loss", "loss"), ("accuracy", "accuracy"), ("sequence_accuracy", "sequence accuracy")):
        series = [Series(f"{split} {label}", x, [e.get(f"{split}_{key}") for e in h], COLORS[i], dashed=i == 1)
                  for i, split in enumerate(("train", "val")) if any(f"{split}_{key}" in e for e in h)]
        if series:
            charts.append(line_chart(series, title=label, x_label="epoch", y_label=label, markers=markers,
                                     y_range=(0.0, 1.0) if key != "loss" else None))
    if any("lr" in e for e in h):
        charts.append(line_chart([Series("learning rate", x, [e.get("lr") for e in h], COLORS[3])],
                                 title="learning rate", x_label="epoch", y_label="lr", markers=markers))
    return f'<div class="charts">{"".join(charts)}</div>'


def _finding_cards(run: RunFiles, prefix: str) -> str:
    earlier = " in the attempt that made the final model (the earlier attempts' are under Repairs)" \
        if run.repairs else ""
    if not run.findings:
        return f"<p>The doctor found nothing{earlier}.</p>" if run.diagnosis else \
            "<p>No diagnosis.json: the run was trained without the doctor.</p>"
    cards = []
    for i, f in enumerate(run.findings, 1):
        severity = str(f.get("severity", "info"))
        symptom = SYMPTOMS.get(str(f.get("symptom")))
        cause = f.get("cause")
        evidence = f.get("evidence") if isinstance(f.get("evidence"), dict) else {}
        rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(_evidence(v))}</td></tr>" for k, v in evidence.items())
        cards.append(
            f'<div class="finding {esc(severity)}" id="{prefix}finding-{i}"><b>{i}.</b> '
            f'<span class="badge {esc(severity)}">{esc(severity)}</span> <b>{esc(_title(f))}</b>'
            + (f"<p>{esc(symptom.means)}.</p>" if symptom else "")
            + (f"<p><b>Cause:</b> {esc(CAUSES.get(str(cause), str(cause)))}</p>" if cause else "")
            + (f"<table><tr><th>evidence</th><th>value</th></tr>{rows}</table>" if rows else "")
            + f"<p><b>Remedy:</b> {esc(str(f.get('remedy', '')))}</p>"
            + (f"<p><b>Done during the run:</b> {esc(str(f['repaired']))}</p>" if f.get("repaired") else "")
            + "</div>")
    return "".join(cards)


def _evidence(v: Any) -> str:
    if isinstance(v, float):
        return format(v, ".4g")
    if isinstance(v, (list, dict)):
        text = json.dumps(v, default=str)
        return text if len(text) < 300 else text[:300] + " ..."
    return str(v)


def _repairs(run: RunFiles, prefix: str) -> str:
    if not run.repairs:
        return ""
    items = []
    for r in run.repairs:
        before, after = r.get("before") or {}, r.get("after") or {}
        changes = ", ".join(esc(str(c)) for c in r.get("changes", []))
        start = f", going on from epoch {_num(r.get('from_epoch'))}" if r.get("from_epoch") else ", from scratch"
        items.append(
            f'<li class="repair"><b>attempt {_num(r.get("attempt"))}</b>: {esc(str(r.get("symptom")))}'
            + (f" ({esc(str(r.get('cause')))})" if r.get("cause") else "")
            + f" &rarr; <code>{changes}</code>{start}<br>before: val accuracy {_num(before.get('val_accuracy'))}, "
            f"{_num(before.get('epochs_run'))} epochs, findings {esc(', '.join(map(str, before.get('findings', []))))}"
            f"<br>after: val accuracy {_num(after.get('val_accuracy'))}, {_num(after.get('epochs_run'))} epochs, "
            f"findings {esc(', '.join(map(str, after.get('findings', []))) or 'none')}</li>")
    given = run.diagnosis.get("config_given")
    note = "<p>The config you gave is kept in diagnosis.json (<code>config_given</code>); config.yaml holds the " \
           "repaired one.</p>" if given else ""
    return f'<section id="{prefix}repairs"><h2>Repairs</h2><ol class="timeline">{"".join(items)}</ol>{note}</section>'


def _audit(run: RunFiles, prefix: str) -> str:
    audit = [f for f in run.diagnosis.get("audit", []) if isinstance(f, dict)]
    notes = [n for n in run.diagnosis.get("notes", []) if isinstance(n, str)]
    if not run.diagnosis:
        return ""
    rows = "".join(f"<li>{esc(_title(f))}: {esc(str(f.get('remedy', '')))}</li>" for f in audit)
    body = f"<ul>{rows}</ul>" if rows else "<p>The data audit found nothing before training.</p>"
    if notes:
        body += "<p>The doctor's notes:</p><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
    return f'<section id="{prefix}audit"><h2>Data audit</h2>{body}</section>'


def _metrics(run: RunFiles, prefix: str) -> str:
    m = run.metrics
    if not m:
        return f'<section id="{prefix}metrics"><h2>Metrics</h2><p>No metrics.json: the run did not finish.</p></section>'
    splits = [s for s in ("train", "val", "test") if isinstance(m.get(s), dict)]
    keys = [k for k in ("loss", "accuracy", "sequence_accuracy", "balanced_accuracy", "macro_f1")
            if any(k in m[s] for s in splits)]
    rows = "".join(f"<tr><td>{s}</td>" + "".join(f'<td class="num">{_num(m[s].get(k))}</td>' for k in keys)
                   + "</tr>" for s in splits)
    out = [f"<table><tr><th>split</th>{''.join(f'<th>{esc(k)}</th>' for k in keys)}</tr>{rows}</table>"]
    facts = [f"{k.replace('_', ' ')}: {esc(_evidence(m[k]))}" for k in ("status", "weights", "best_epoch",
                                                                         "epochs_run", "n_parameters") if k in m]
    if isinstance(m.get("stopped"), dict):
        facts.append("stopped: " + esc(", ".join(f"{k} {v}" for k, v in m["stopped"].items())))
    out.append(f"<p>{' &middot; '.join(facts)}</p>")
    part = m.get("test") if isinstance(m.get("test"), dict) else {}
    if isinstance(part.get("per_class_recall"), list):
        recall, precision = part.get("per_class_recall") or [], part.get("per_class_precision") or []
        rows = "".join(f"<tr><td>{c}</td>{_bar(r)}{_bar(precision[c] if c < len(precision) else None)}</tr>"
                       for c, r in enumerate(recall))
        out.append(f"<h3>Per class (test)</h3><table class='per-class'><tr><th>class</th><th>recall</th>"
                   f"<th>precision</th></tr>{rows}</table>")
    if isinstance(part.get("confusion_matrix"), list):
        out.append(_confusion(part["confusion_matrix"]))
    return f'<section id="{prefix}metrics"><h2>Metrics</h2>{"".join(out)}</section>'


def _bar(v: Any) -> str:
    if not finite(v):
        return "<td>-</td>"
    return f'<td class="num">{v:.3f} <span class="bar" style="width:{max(0.0, min(1.0, v)) * 8:.2f}em"></span></td>'


def _confusion(matrix: list[Any]) -> str:
    rows = [r for r in matrix if isinstance(r, list)]
    top = max((v for r in rows for v in r if finite(v)), default=0) or 1
    cells = "".join(
        f"<tr><th>{i}</th>" + "".join(
            f'<td class="num" style="background:rgba(41,128,185,{(v / top if finite(v) else 0):.2f})">{_num(v)}</td>'
            for v in r) + "</tr>" for i, r in enumerate(rows))
    head = "".join(f"<th>{j}</th>" for j in range(max((len(r) for r in rows), default=0)))
    return (f"<h3>Confusion matrix (test; rows: true class, columns: predicted)</h3>"
            f"<table class='confusion'><tr><th></th>{head}</tr>{cells}</table>")


def _header(run: RunFiles) -> str:
    planned = run.planned_epochs
    epochs = f"{len(run.history)} of {planned} epochs" if planned else f"{len(run.history)} epochs"
    data = run.config.get("data", {}) if isinstance(run.config.get("data"), dict) else {}
    model = run.config.get("model", {}) if isinstance(run.config.get("model"), dict) else {}
    counts = {s: sum(1 for f in run.findings if f.get("severity") == s) for s in ("error", "warning", "info")}
    found = ", ".join(f'<span class="badge {s}">{n} {s}</span>' for s, n in counts.items() if n) or "nothing found"
    problems = "".join(f'<li class="problem">{esc(p)}</li>' for p in run.problems)
    return (f"<h1>{esc(run.name)}</h1><p><span class='badge {esc(run.status)}'>{esc(run.status)}</span> "
            f"{esc(epochs)} &middot; data {esc(str(data.get('path') or data.get('name', '?')))} &middot; model "
            f"{esc(str(model.get('name', '?')))} &middot; directory <code>{esc(str(run.dir))}</code></p>"
            f"<p>The doctor: {found}</p>" + (f"<ul>{problems}</ul>" if problems else ""))


def render_run(run: RunFiles, thresholds: Thresholds | None = None, prefix: str = "") -> str:
    """The body of one run's report (see :func:`document`); ``prefix`` keeps its element ids apart from
    another run's on the same page."""
    t = thresholds or Thresholds()
    safe = _guarded
    return "".join([
        safe(_header, run),
        f'<section id="{prefix}curves"><h2>Training curves</h2>{safe(_epoch_charts, run, prefix)}</section>',
        f'<section id="{prefix}findings"><h2>Findings</h2>{safe(_finding_cards, run, prefix)}</section>',
        safe(lambda: layer_section(run, finding_markers(run, "step", prefix), t, prefix)),
        safe(_repairs, run, prefix), safe(_audit, run, prefix), safe(_metrics, run, prefix),
        f'<section id="{prefix}config"><h2>Config</h2><pre>{esc(run.config_text or "(no config.yaml)")}</pre></section>'])


def _guarded(make, *args) -> str:
    """A section, or, where a file held something it cannot draw, one line that says so (the rest is shown)."""
    try:
        return make(*args)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        return f'<p class="problem">This part cannot be drawn from the run\'s files: {esc(type(err).__name__)}: ' \
               f'{esc(str(err))}</p>'


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict):
        return {prefix: config}
    out: dict[str, Any] = {}
    for k, v in config.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def render_runs(runs: Sequence[RunFiles]) -> str:
    """The body of a report comparing runs: overlaid curves, the config keys that differ, and each run."""
    names = [f"{i + 1}: {r.name}" for i, r in enumerate(runs)]
    charts = []
    for key, label in (("val_loss", "validation loss"), ("train_loss", "training loss"),
                       ("val_accuracy", "validation accuracy")):
        series = [Series(n, [e.get("epoch", j + 1) for j, e in enumerate(r.history)],
                         [e.get(key) for e in r.history], COLORS[i % len(COLORS)])
                  for i, (n, r) in enumerate(zip(names, runs)) if any(key in e for e in r.history)]
        if series:
            charts.append(line_chart(series, title=label, x_label="epoch", y_label=label,
                                     y_range=(0.0, 1.0) if "accuracy" in key else None))
    flats = [_flat(r.config) for r in runs]
    keys = sorted({k for f in flats for k in f})
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats}) > 1]
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    rows = "".join(f"<tr><td><code>{esc(k)}</code></td>" + "".join(
        f"<td>{esc(json.dumps(f[k], default=str)) if k in f else '<i>absent</i>'}</td>" for f in flats) + "</tr>"
                   for k in differ)
    diff = f"<table class='config-diff'><tr><th>key</th>{head}</tr>{rows}</table>" if differ else \
        "<p>The configs are the same.</p>"
    summary = "".join(
        f"<tr><td>{esc(n)}</td><td><span class='badge {esc(r.status)}'>{esc(r.status)}</span></td>"
        f"<td class='num'>{len(r.history)}</td>"
        f"<td class='num'>{_num((r.metrics or {}).get('test', {}).get('accuracy') if isinstance((r.metrics or {}).get('test'), dict) else None)}</td>"
        f"<td>{esc(', '.join(str(f.get('symptom')) for f in r.findings) or 'none')}</td></tr>"
        for n, r in zip(names, runs))
    parts = [f"<h1>{len(runs)} runs compared</h1><table><tr><th>run</th><th>status</th><th>epochs</th>"
             f"<th>test accuracy</th><th>findings</th></tr>{summary}</table>",
             f'<section id="curves"><h2>Curves, overlaid</h2><div class="charts">{"".join(charts)}</div></section>',
             f'<section id="config-diff"><h2>Config keys that differ</h2>{diff}</section>']
    for i, r in enumerate(runs, 1):
        parts.append(f'<section class="run" id="run-{i}">{render_run(r, prefix=f"run-{i}-")}</section>')
    return "".join(parts)
