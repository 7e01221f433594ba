"""The report's page, checked as values: what it draws, what it escapes, what it refuses, what it leaves alone."""

import hashlib
import html
import json
import re

import pytest

from trainwell.errors import TrainwellError
from trainwell.report import load_run, render_report, write_report
from trainwell.report.svg import MAX_POINTS, Marker, Series, line_chart

from report_runs import HOSTILE, write_run


def _tree(d):
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def _points(svg):
    return [tuple(map(float, p.split(","))) for poly in re.findall(r'points="([^"]+)"', svg) for p in poly.split()]


def test_a_line_is_drawn_where_its_values_are():
    svg = line_chart([Series("s", [1, 2, 3], [0.0, 0.5, 1.0])], title="t", x_label="x", y_label="y",
                     y_range=(0.0, 1.0))
    (x1, y1), (x2, y2), (x3, y3) = _points(svg)
    assert x1 < x2 < x3 and x2 - x1 == pytest.approx(x3 - x2)
    assert y1 > y2 > y3 and y1 - y2 == pytest.approx(y2 - y3)  # linear in y, up is smaller


def test_non_finite_values_break_the_line_and_are_counted():
    svg = line_chart([Series("loss", [1, 2, 3, 4, 5], [1.0, float("nan"), 0.8, float("inf"), 0.6])],
                     title="t", x_label="x", y_label="y")
    assert svg.count('class="nonfinite"') == 2 and "loss (2 non-finite)" in svg
    assert "polyline" not in svg and svg.count("<circle") == 3  # three isolated finite points


def test_a_long_series_is_thinned_to_its_bucket_extremes():
    n = 100_000
    y = [0.5] * n
    y[12_345], y[67_890] = 9.0, -9.0  # the spikes must survive
    svg = line_chart([Series("s", list(range(n)), y)], title="t", x_label="x", y_label="y")
    pts = _points(svg)
    assert len(pts) <= MAX_POINTS
    ys = [p[1] for p in pts]
    assert max(ys) - min(ys) > 100  # from one spike to the other


def test_markers_link_to_their_findings_and_escape_their_text():
    svg = line_chart([Series("s", [0, 10], [1, 2])], title=HOSTILE, x_label="x", y_label="y",
                     markers=[Marker(5, "1", HOSTILE, "error", href="#finding-1")])
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert 'href="#finding-1"' in svg and svg.count('class="marker error') == 1


def test_report_of_a_trained_run(runs):
    run = load_run(runs["healthy"])
    page = render_report([run])
    history = [json.loads(line) for line in (runs["healthy"] / "history.jsonl").read_text().splitlines()]
    assert len(history) == 6 and "6 of 6 epochs" in page
    assert page.count('<svg class="chart') >= 3 + 5  # curves, and the per-layer plots from stats.jsonl
    for title in ("weight gradient RMS per layer", "update size |dw| / |w| per layer", "activation output mean",
                  "activation output std", "share of units dead on the whole batch (ReLU)"):
        assert html.escape(title) in page, title
    assert 'class="marker best' in page and "<script" not in page  # no script at all: it opens anywhere
    metrics = json.loads((runs["healthy"] / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy']:.4g}" in page
    assert "content=\"default-src 'none'; img-src data:" in page  # nothing from the network, no script


def test_a_repaired_run_shows_its_attempts(runs):
    page = render_report([load_run(runs["repaired"])])
    repairs = json.loads((runs["repaired"] / "diagnosis.json").read_text())["repairs"]
    assert repairs and page.count('<li class="repair">') == len(repairs)
    for r in repairs:
        for change in r["changes"]:
            assert change in page


def test_a_failed_run_marks_the_nan_where_it_was_found(runs):
    run = load_run(runs["failed"])
    page = render_report([run])
    nan = next(f for f in run.findings if f["symptom"] == "nan_loss")
    assert run.status == "failed" and 'id="finding-' in page
    assert f"(epoch {nan['epoch']}, step {nan['step']})" in page
    assert page.count("finding-marker") >= 2  # on an epoch curve and a per-layer plot


def test_an_interrupted_run_says_it_did_not_finish(runs):
    page = render_report([load_run(runs["interrupted"])])
    assert "unfinished" in page and "3 of 50 epochs" in page and "did not finish" in page


def test_every_string_of_a_run_is_escaped(runs, odd_runs):
    for d in (runs["hostile"], odd_runs["hostile_files"]):
        page = render_report([load_run(d)])
        assert "<script" not in page and "<img src=x" not in page and "&lt;script&gt;" in page


def test_nan_inf_zero_and_long_runs(odd_runs):
    page = render_report([load_run(odd_runs["nan"])])
    assert "(1 non-finite)" in page and "2 non-finite values in the samples" in page
    page = render_report([load_run(odd_runs["zero"])])
    assert "0 of 10 epochs" in page and "No epochs were recorded" in page
    page = render_report([load_run(odd_runs["long"])])
    assert len(page.encode()) < 2_000_000
    assert max(len(p.split()) for p in re.findall(r'points="([^"]+)"', page)) <= MAX_POINTS


def test_several_runs_are_overlaid_with_their_config_diff(runs):
    page = render_report([load_run(runs["healthy"]), load_run(runs["repaired"])])
    diff = page[page.index('id="config-diff"'):page.index('id="run-1"')]
    keys = re.findall(r"<tr><td><code>([^<]+)</code>", diff)
    assert "optim.name" in keys and "optim.lr" in keys and "name" in keys
    assert "model.depth" not in keys  # the same in both
    assert 'id="run-1-finding-' not in page or 'id="run-2-' in page


def test_writing_changes_nothing_but_the_report(runs, tmp_path):
    d = runs["repaired"]
    (d / "report.html").unlink(missing_ok=True)
    before = _tree(d)
    path = write_report(d)
    after = _tree(d)
    assert path == d / "report.html" and set(after) - set(before) == {"report.html"}
    assert {k: v for k, v in after.items() if k != "report.html"} == before


def test_bad_input_is_one_line(tmp_path, runs):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainwellError, match="is not a run directory"):
        write_report(tmp_path / "empty")
    with pytest.raises(TrainwellError, match="not found"):
        write_report(tmp_path / "nope")
    with pytest.raises(TrainwellError, match="needs --out"):
        write_report([runs["healthy"], runs["failed"]])
    with pytest.raises(TrainwellError, match="would overwrite"):
        write_report(runs["healthy"], runs["healthy"] / "metrics.json")


def test_a_missing_or_corrupt_stats_file_says_why(tmp_path):
    d = write_run(tmp_path / "r", [{"epoch": 1, "train_loss": 1.0}])
    assert "No per-layer plots: no stats.jsonl" in render_report([load_run(d)])
    (d / "stats.jsonl").write_text('{"step": 0}\nnot json\n{"step": 5}\n')
    assert "stats.jsonl cannot be read (line 2" in render_report([load_run(d)])
    (d / "metrics.json").write_text("{broken")
    page = render_report([load_run(d)])
    assert "metrics.json cannot be read" in page and "1 of 1 epochs" in page


def test_shares_and_accuracies_over_two_decades_stay_on_their_fixed_range():
    # a sequence task's accuracy from 0.002 to 0.9: no log scale (log 0 is no number), drawn on 0..1
    svg = line_chart([Series("acc", [1, 2, 3], [0.002, 0.3, 0.9])], title="t", x_label="x", y_label="y",
                     y_range=(0.0, 1.0))
    (_, y1), _, (_, y3) = _points(svg)
    assert y1 > y3


def test_zeros_on_a_log_scale_are_marked_not_dropped():
    svg = line_chart([Series("grad", [1, 2, 3, 4], [1e-3, 0.0, 0.0, 1e-1])], title="t", x_label="x", y_label="y",
                     log_y=True)
    assert svg.count('class="zero"') == 2 and "grad (2 at 0)" in svg


def test_files_of_the_wrong_shape_are_said_not_fatal(tmp_path):
    d = write_run(tmp_path / "odd", [{"epoch": "one", "train_loss": 1.0}, {"epoch": None, "train_loss": 0.5}],
                  diagnosis={"audit": 3, "findings": "none", "repairs": [{"before": "x", "after": 2, "changes": [1]}]},
                  stats=[{"step": 0, "activations": {"a": "not a dict"}, "layers": []}])
    page = render_report([load_run(d)])
    assert "2 of 2 epochs" in page and "cannot be drawn from the run" in page
