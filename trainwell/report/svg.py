"""Inline SVG charts: line charts with finding markers, and a histogram-over-time heat map.

Every string that reaches the SVG (titles, series names, marker texts) is
HTML-escaped here. Non-finite values are never dropped: a NaN or an infinity
breaks its line and is drawn as a red cross at the chart's edge, with its
position in the cross's tooltip, and counted in the legend. Long series are
thinned to the minimum and maximum of each of :data:`MAX_POINTS` / 2
buckets, so that a 10,000-epoch run draws as fast as a 100-epoch one and
keeps its spikes.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["MAX_POINTS", "COLORS", "Marker", "Series", "heat_map", "line_chart"]

MAX_POINTS = 1200
MAX_CROSSES = 100
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf")
_SEVERITY_COLORS = {"error": "#c0392b", "warning": "#e67e22", "info": "#2980b9"}
_W, _H = 540, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 40


@dataclass
class Series:
    """One line: ``y`` over ``x`` (same length); ``dashed`` for validation curves and the like, ``dots`` for
    points not joined (a study's trials), each with its value in its tooltip."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    color: str = COLORS[0]
    dashed: bool = False
    dots: bool = False


@dataclass
class Marker:
    """A vertical line at ``x`` with a numbered badge: a finding (linked to ``#finding-N``) or a best epoch."""

    x: float
    label: str
    text: str
    kind: str = "info"  # a severity, or "best"
    href: str | None = None
    classes: list[str] = field(default_factory=list)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _thin(x: Sequence[float], y: Sequence[float]) -> list[tuple[float, float]]:
    """At most MAX_POINTS points: each bucket's minimum and maximum, in x order (non-finite kept)."""
    points = list(zip(x, y))
    if len(points) <= MAX_POINTS:
        return points
    size = math.ceil(len(points) / (MAX_POINTS // 2))
    out = []
    for i in range(0, len(points), size):
        bucket = points[i:i + size]
        bad = [p for p in bucket if not _finite(p[1])]
        good = [p for p in bucket if _finite(p[1])]
        keep = set()
        if good:
            keep = {min(good, key=lambda p: p[1]), max(good, key=lambda p: p[1])}
        out += sorted(keep) + bad[:1]
    return sorted(out, key=lambda p: p[0])


def _ticks(lo: float, hi: float, log: bool, n: int = 5, integer: bool = False) -> list[float]:
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        step = max(1, math.ceil((b - a) / n))
        return [10.0 ** k for k in range(a, b + 1, step)]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:  # epochs and steps
        step = max(1.0, math.ceil(step))
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v != 0 else "0"


class _Frame:
    """The mapping from data to pixels of one chart."""

    def __init__(self, xs: list[float], ys: list[float], log_y: bool, y_range: tuple[float, float] | None,
                 width: int, height: int) -> None:
        self.w, self.h, self.log = width, height, log_y
        self.x0, self.x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if self.x1 == self.x0:
            self.x0, self.x1 = self.x0 - 0.5, self.x1 + 0.5
        if y_range is not None:
            self.y0, self.y1 = y_range
        elif ys:
            self.y0, self.y1 = min(ys), max(ys)
        else:
            self.y0, self.y1 = (0.1, 1.0) if log_y else (0.0, 1.0)
        if self.y1 == self.y0:
            self.y0, self.y1 = (self.y0 / 2, self.y1 * 2) if log_y else (self.y0 - 0.5, self.y1 + 0.5)
        if log_y:
            self.ly0, self.ly1 = math.log10(self.y0), math.log10(self.y1)

    def px(self, x: float) -> float:
        return _LEFT + (x - self.x0) / (self.x1 - self.x0) * (self.w - _LEFT - _RIGHT)

    def py(self, y: float) -> float:
        t = (math.log10(y) - self.ly0) / (self.ly1 - self.ly0) if self.log else (y - self.y0) / (self.y1 - self.y0)
        return self.h - _BOTTOM - t * (self.h - _TOP - _BOTTOM)


def _axes(f: _Frame, title: str, x_label: str, y_label: str, e=html.escape) -> list[str]:
    parts = [f'<text class="title" x="{_LEFT}" y="16" font-size="13" font-weight="bold">{e(title)}</text>',
             f'<rect x="{_LEFT}" y="{_TOP}" width="{f.w - _LEFT - _RIGHT}" height="{f.h - _TOP - _BOTTOM}" '
             f'fill="none" stroke="#bbb"/>']
    for t in _ticks(f.y0, f.y1, f.log):
        if f.y0 <= t <= f.y1:
            y = f.py(t)
            parts.append(f'<line x1="{_LEFT}" x2="{f.w - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                         f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(t)}</text>')
    for t in _ticks(f.x0, f.x1, False, 6, integer=True):
        if f.x0 <= t <= f.x1:
            x = f.px(t)
            parts.append(f'<text x="{x:.1f}" y="{f.h - _BOTTOM + 14}" font-size="10" text-anchor="middle">'
                         f'{_fmt(t)}</text>')
    parts.append(f'<text x="{(f.w + _LEFT) / 2:.0f}" y="{f.h - 6}" font-size="11" text-anchor="middle">'
                 f'{e(x_label)}</text>')
    parts.append(f'<text transform="translate(12,{(f.h) / 2:.0f}) rotate(-90)" font-size="11" '
                 f'text-anchor="middle">{e(y_label)}</text>')
    return parts


def _markers(f: _Frame, markers: Sequence[Marker], e=html.escape) -> list[str]:
    parts = []
    taken: dict[int, int] = {}  # badges at the same place stack downwards
    for m in markers:
        if not _finite(m.x):
            continue
        x = min(max(f.px(m.x), _LEFT), f.w - _RIGHT)
        row = taken[round(x / 12)] = taken.get(round(x / 12), -1) + 1
        cy = _TOP + 9 + 18 * row
        color = "#27ae60" if m.kind == "best" else _SEVERITY_COLORS.get(m.kind, "#555")
        badge = (f'<circle cx="{x:.1f}" cy="{cy}" r="8" fill="{color}"/>'
                 f'<text x="{x:.1f}" y="{cy + 4}" font-size="10" fill="#fff" text-anchor="middle">'
                 f'{e(m.label)}</text>')
        if m.href:
            badge = f'<a href="{e(m.href)}">{badge}</a>'
        cls = " ".join(["marker", e(m.kind), *map(e, m.classes)])
        parts.append(f'<g class="{cls}"><title>{e(m.text)}</title><line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" '
                     f'y2="{f.h - _BOTTOM}" stroke="{color}" stroke-dasharray="4 3"/>{badge}</g>')
    return parts


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str, log_y: bool | None = None,
               markers: Sequence[Marker] = (), y_range: tuple[float, float] | None = None,
               hlines: Sequence[tuple[float, str]] = (), width: int = _W, height: int = _H) -> str:
    """An ``<svg>`` line chart. ``log_y`` None: logarithmic when the positive values span over 2 decades."""
    e = html.escape
    thinned = [(s, _thin(s.x, s.y)) for s in series]
    xs = [x for _, pts in thinned for x, _ in pts if _finite(x)]
    if xs:  # a finding after the last value is drawn where it was, not at the edge
        xs += [m.x for m in markers if _finite(m.x)]
    ys = [y for _, pts in thinned for _, y in pts if _finite(y)]
    if log_y is None:  # a fixed range from 0 (accuracies, shares) stays linear
        pos = [y for y in ys if y > 0]
        log_y = y_range is None and bool(pos) and len(pos) == len(ys) and max(pos) / min(pos) > 100
    if log_y and y_range is not None and y_range[0] <= 0:
        log_y = False
    if log_y:
        ys = [y for y in ys if y > 0]
    f = _Frame(xs, ys, log_y, y_range, width, height)
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{e(title)}">']
    parts += _axes(f, title, x_label, y_label)
    for value, label in hlines:
        if _finite(value) and f.y0 <= value <= f.y1 and (value > 0 or not log_y):
            y = f.py(value)
            parts.append(f'<line class="threshold" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="#999" stroke-dasharray="2 2"><title>{e(label)}</title></line>')
    legend = []
    for i, (s, pts) in enumerate(thinned):
        runs: list[list[str]] = [[]]
        crosses, zeros = [], []
        for x, y in pts:
            if not _finite(x):
                continue
            if _finite(y) and (y > 0 or not log_y):
                yy = min(max(y, f.y0), f.y1)  # a fixed range clips
                runs[-1].append(f"{f.px(x):.1f},{f.py(yy):.1f}")
            else:
                if runs[-1]:
                    runs.append([])
                (crosses if not _finite(y) else zeros).append((x, y))  # zeros: off a log scale, not dropped
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        if s.dots:
            parts += [f'<circle class="dot" cx="{f.px(x):.1f}" cy="{f.py(min(max(y, f.y0), f.y1)):.1f}" r="3" '
                      f'fill="{s.color}"><title>{e(s.name)}: {y:.4g} at {_fmt(x)}</title></circle>'
                      for x, y in pts if _finite(x) and _finite(y) and (y > 0 or not log_y)]
            runs = []
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{s.color}"/>')
            elif run:
                parts.append(f'<polyline class="series" fill="none" stroke="{s.color}" stroke-width="1.5"{dash} '
                             f'points="{" ".join(run)}"/>')
        for x, y in crosses[:MAX_CROSSES]:
            px = f.px(x) if _finite(x) else _LEFT
            py = height - _BOTTOM - 4 if y == -math.inf else _TOP + 4  # NaN, None (null) and +inf at the top
            parts.append(f'<g class="nonfinite"><title>{e(s.name)}: {e(str(y))} at {_fmt(x)}</title>'
                         f'<path d="M{px - 4:.1f},{py - 4:.1f}l8,8m0,-8l-8,8" stroke="#c0392b" '
                         f'stroke-width="2"/></g>')
        for x, _ in zeros[:MAX_CROSSES]:
            parts.append(f'<g class="zero"><title>{e(s.name)}: 0 at {_fmt(x)} (below a log scale)</title>'
                         f'<path d="M{f.px(x) - 4:.1f},{height - _BOTTOM - 1}l4,-6l4,6z" fill="{s.color}"/></g>')
        count = sum(1 for v in s.y if not _finite(v))  # all of them, thinned or not
        bad = f" ({count} non-finite)" if count else ""
        if log_y:
            zero = sum(1 for v in s.y if _finite(v) and v <= 0)
            bad += f" ({zero} at 0)" if zero else ""
        lx, ly = _LEFT + 8 + (i % 2) * (width - _LEFT - _RIGHT) // 2, _TOP + 30 + (i // 2) * 14
        key = (f'<circle cx="{lx + 9}" cy="{ly - 4}" r="3" fill="{s.color}"/>' if s.dots else
               f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{s.color}" '
               f'stroke-width="2"{dash}/>')
        legend.append(f'{key}<text x="{lx + 22}" y="{ly}" font-size="10">{e(s.name)}{e(bad)}</text>')
    if not ys and not any(c for _, pts in thinned for c in pts):
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#888">'
                     f'no values</text>')
    parts += legend
    parts += _markers(f, markers)
    parts.append("</svg>")
    return "".join(parts)


def heat_map(columns: Sequence[Sequence[float]], x: Sequence[float], *, title: str, x_label: str,
             y_label: str, y_span: tuple[float, float], markers: Sequence[Marker] = (),
             width: int = _W, height: int = 200, max_columns: int = 300) -> str:
    """An ``<svg>`` with one column per sample (a histogram, low bins at the bottom) as an embedded PNG.

    Each column is scaled to its own largest count, on a log scale (fastai's
    ``color_dim``): where the mass of the distribution sits, not how many rows
    the batch had. Columns beyond ``max_columns`` are summed in groups.
    """
    import numpy as np
    from matplotlib import image as mpimage

    e = html.escape
    data = np.asarray(columns, dtype=float)
    xs = list(x)
    if data.ndim != 2 or not data.size:
        return line_chart([], title=title, x_label=x_label, y_label=y_label, width=width, height=height)
    if len(data) > max_columns:
        group = math.ceil(len(data) / max_columns)
        cut = len(data) // group * group
        merged = data[:cut].reshape(-1, group, data.shape[1]).sum(1)
        data = np.vstack([merged, data[cut:].sum(0, keepdims=True)]) if cut < len(data) else merged
        xs = xs[::group][:len(data)]
    scaled = np.log1p(data) / np.maximum(np.log1p(data.max(1, keepdims=True)), 1e-12)
    buffer = io.BytesIO()
    mpimage.imsave(buffer, scaled.T[::-1], cmap="viridis", vmin=0, vmax=1, format="png")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    f = _Frame([float(v) for v in xs], list(y_span), False, y_span, width, height)
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    parts = [f'<svg class="chart heat" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{e(title)}">',
             f'<image x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" preserveAspectRatio="none" '
             f'style="image-rendering:pixelated" href="data:image/png;base64,{png}"/>']
    parts += _axes(f, title, x_label, y_label)
    parts += _markers(f, markers)
    parts.append("</svg>")
    return "".join(parts)
