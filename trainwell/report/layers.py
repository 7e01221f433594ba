"""The report's per-layer plots, from ``stats.jsonl`` (:mod:`trainwell.doctor.record`).

Over the sampled steps: each layer's weight-gradient RMS, the back-propagated
(state) gradient at each activation, each layer's update size ``|dw|/|w|``
against the doctor's thresholds, each activation's output spread, its dead or
saturated share, and the histogram of its input over time. The doctor's
findings are marked at the step where each was found.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from trainwell.doctor.record import HIST_RANGE
from trainwell.doctor.thresholds import Thresholds
from trainwell.report.rundata import RunFiles
from trainwell.report.svg import COLORS, Marker, Series, heat_map, line_chart

__all__ = ["MAX_LAYERS", "layer_section"]

MAX_LAYERS = 12  # lines per chart; deeper models show this many layers, spread from first to last
esc = html.escape


def _names(samples: list[dict[str, Any]], group: str) -> list[str]:
    names: dict[str, None] = {}
    for s in samples:
        if isinstance(s.get(group), dict):
            names.update(dict.fromkeys(s[group]))
    return list(names)


def _spread(names: list[str]) -> tuple[list[str], str]:
    if len(names) <= MAX_LAYERS:
        return names, ""
    picked = [names[round(i * (len(names) - 1) / (MAX_LAYERS - 1))] for i in range(MAX_LAYERS)]
    return picked, f"<p>{len(names)} layers: {MAX_LAYERS} of them are drawn, from the first to the last.</p>"


def _series(samples: list[dict[str, Any]], group: str, key: str, names: Sequence[str]) -> list[Series]:
    out = []
    for i, name in enumerate(names):
        xs, ys = [], []
        for s in samples:
            entry = (s.get(group) or {}).get(name)
            if isinstance(entry, dict) and key in entry:
                xs.append(s["step"])
                ys.append(entry[key])
        if xs:
            out.append(Series(name, xs, ys, COLORS[i % len(COLORS)]))
    return out


def layer_section(run: RunFiles, markers: list[Marker], t: Thresholds, prefix: str = "") -> str:
    """The section of per-layer plots, or the reason there are none."""
    samples = run.stats
    if not samples:
        return (f'<section id="{prefix}layers"><h2>Per layer</h2><p class="problem">No per-layer plots: '
                f"{esc(run.stats_problem or 'no samples')}.</p></section>")
    layers, note = _spread(_names(samples, "layers"))
    acts, act_note = _spread(_names(samples, "activations"))
    charts = []

    def chart(series: list[Series], title: str, y_label: str, **kw: Any) -> None:
        if series:
            charts.append(line_chart(series, title=title, x_label="step", y_label=y_label, markers=markers, **kw))

    chart(_series(samples, "layers", "grad_rms", layers), "weight gradient RMS per layer", "RMS", log_y=True)
    chart(_series(samples, "activations", "state_grad", acts), "back-propagated gradient at each activation",
          "RMS", log_y=True)
    chart(_series(samples, "layers", "update", layers), "update size |dw| / |w| per layer", "ratio", log_y=True,
          hlines=[(t.update_high, f"update_high {t.update_high}: steps this large throw the weights about"),
                  (t.update_low, f"update_low {t.update_low}: steps this small do not move the weights")])
    chart(_series(samples, "activations", "mean", acts), "activation output mean", "mean")
    chart(_series(samples, "activations", "std", acts), "activation output std", "std")
    chart(_series(samples, "activations", "pre_std", acts), "pre-activation std", "std")
    dead = _series(samples, "activations", "dead_batch", acts)
    chart(dead, "share of units dead on the whole batch (ReLU)", "share", y_range=(0.0, 1.0),
          hlines=[(t.dead_share, f"dead_share {t.dead_share}")])
    chart(_series(samples, "activations", "saturated", acts), "share of units saturated (sigmoid, tanh)", "share",
          y_range=(0.0, 1.0), hlines=[(t.saturated_share, f"saturated_share {t.saturated_share}")])
    times = _names(samples, "time")
    for key, label in (("first", "first"), ("last", "last")):
        chart(_series(samples, "time", key, times), f"gradient at the {label} time step's input", "RMS",
              log_y=True)
    heat = []
    for name in acts:
        cols, xs = [], []
        for s in samples:
            entry = (s.get("activations") or {}).get(name)
            if isinstance(entry, dict) and isinstance(entry.get("hist"), list) and entry["hist"]:
                cols.append(entry["hist"])
                xs.append(s["step"])
        widths = {len(c) for c in cols}
        if cols and len(widths) == 1:
            kind = next((s["activations"][name].get("kind") for s in samples
                         if name in (s.get("activations") or {})), None)
            heat.append(heat_map(cols, xs, title=f"{name} ({kind or 'activation'}): input histogram over time",
                                 x_label="step", y_label="pre-activation", y_span=HIST_RANGE, markers=markers))
    bad = sum(int(s.get("non_finite", 0) or 0) for s in samples)
    warn = f'<p class="problem">{bad} non-finite values in the samples: drawn as red crosses.</p>' if bad else ""
    heat_note = ("<p>Each column is one sample's histogram of the activation's input, "
                 f"{HIST_RANGE[0]:g} to {HIST_RANGE[1]:g} (values outside in the end bins), scaled to its "
                 "largest bin, on a log scale: below 0 a ReLU's units are dead; far from 0 a sigmoid or tanh "
                 "saturates.</p>") if heat else ""
    return (f'<section id="{prefix}layers"><h2>Per layer</h2><p>{len(samples)} samples, steps {samples[0]["step"]} to '
            f'{samples[-1]["step"]}.</p>{note}{act_note}{warn}<div class="charts">{"".join(charts)}</div>'
            f'{heat_note}<div class="charts">{"".join(heat)}</div></section>')
