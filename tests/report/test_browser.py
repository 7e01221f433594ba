"""Every page, opened in a real headless Chromium (Debian's, driven by Playwright), as a person would look at it."""

import io
import json
import subprocess
import sys
import time

import pytest

from trainwell.report import write_report, write_study_report
from trainwell.report.serve import RunsServer
from trainwell.report.svg import MAX_POINTS


def _look(browser, url, *, findings=None, plots=True):
    """Open ``url``; return the page after checking it loaded with no script error, dialog or blank plot."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(url)
    page.wait_for_load_state("load")
    charts = page.query_selector_all("svg.chart")
    assert bool(charts) == plots, "no plot on the page" if plots else "plots of nothing"
    for chart in charts:
        box = chart.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50
        drawn = chart.evaluate("s => s.querySelectorAll('polyline, circle, image, path').length "
                               "+ (s.textContent.includes('no values') ? 1 : 0)")
        assert drawn > 0, "a plot drew nothing"
    if findings is not None:
        assert len(page.query_selector_all(".finding[id]")) == findings
        if findings:
            assert page.query_selector_all("g.finding-marker")
    shot = page.screenshot(full_page=True)
    from PIL import Image

    image = Image.open(io.BytesIO(shot)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 20, "the screenshot is blank"
    assert problems == []
    return page


@pytest.mark.parametrize("name", ["healthy", "repaired", "failed", "interrupted", "hostile"])
def test_report_of_a_real_run_in_a_browser(browser, runs, name):
    path = write_report(runs[name])
    findings = len([f for k in ("audit", "findings")
                    for f in json.loads((runs[name] / "diagnosis.json").read_text()).get(k, [])])
    page = _look(browser, path.as_uri(), findings=findings)
    if name == "repaired":
        assert page.query_selector_all("li.repair")
    if name == "hostile":
        assert page.evaluate("document.querySelectorAll('script').length") == 0
        assert "<script>alert('x')</script>" in page.inner_text("h1")  # shown as text, not run
    page.close()


@pytest.mark.parametrize("name", ["hostile_files", "nan", "zero", "long"])
def test_report_of_an_odd_run_in_a_browser(browser, odd_runs, name):
    path = write_report(odd_runs[name])
    page = _look(browser, path.as_uri(), plots=name != "zero")
    if name == "zero":
        assert "No epochs were recorded" in page.inner_text("#curves")
    if name == "nan":
        assert page.query_selector_all("g.nonfinite")
    if name == "hostile_files":
        assert page.evaluate("document.querySelectorAll('script, img[src=x]').length") == 0
    if name == "long":  # 10,000 epochs: thinned, so the page stays small and quick to open and to scroll
        assert path.stat().st_size < 2_000_000
        loaded = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
        assert loaded < 3_000, f"the page took {loaded:.0f} ms to load"
        points = page.evaluate("() => Math.max(...[...document.querySelectorAll('svg.chart polyline')]"
                               ".map(p => p.points.numberOfItems))")
        assert 0 < points <= MAX_POINTS
        scrolled = page.evaluate("() => { const t = performance.now(); window.scrollTo(0, document.body.scrollHeight);"
                                 " document.body.getBoundingClientRect(); return performance.now() - t; }")
        assert scrolled < 500, f"a scroll to the end took {scrolled:.0f} ms"
    page.close()


def test_several_runs_in_a_browser(browser, runs, tmp_path):
    path = write_report([runs["healthy"], runs["repaired"], runs["failed"]], tmp_path / "compare.html")
    page = _look(browser, path.as_uri())
    assert page.query_selector_all("table.config-diff tr")
    page.close()


def test_a_study_page_in_a_browser(browser, study):
    """The optimisation history draws a dot a trial with a value, Optuna's importance image shows, and a
    trial's link opens its own run's report."""
    page = _look(browser, write_study_report(study).as_uri())
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    dots = page.query_selector_all("#history svg.chart circle.dot")
    assert dots and all(d.bounding_box()["width"] > 0 for d in dots)
    image = page.query_selector("#importance img.optuna-plot")
    assert image.evaluate("i => i.complete && i.naturalWidth") > 100 and image.bounding_box()["height"] > 100
    assert "<script>alert('x')</script>" in page.inner_text("#trials")  # shown as text, not run
    best = page.query_selector("tr.best-trial a")
    best.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/report.html") and page.query_selector_all("#curves svg.chart")
    page.close()


def test_the_live_view_follows_a_running_run(browser, tmp_path):
    """A real `trainwell train` in another process; the served page redraws as its epochs arrive."""
    server = RunsServer(tmp_path, port=0)
    server.start()
    proc = subprocess.Popen([sys.executable, "-m", "trainwell", "train", "--out", str(tmp_path / "live"), "-q",
                             "--set", "data.name=moons", "--set", "train.epochs=400", "--set", "data.batch_size=16",
                             "--set", "name=live", "--set", "early_stopping.enabled=false"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "live" / "history.jsonl").exists() or \
                not (tmp_path / "live" / "history.jsonl").read_text().strip():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.2)
        page = _look(browser, server.url + "run/live/")
        first = page.inner_text("#report p")
        # the epochs count moves: the page redrew itself from the new files (the page's CSP forbids the
        # string evaluation of wait_for_function: asked from here instead)
        while page.inner_text("#report p") == first:
            assert proc.poll() is None and time.monotonic() < deadline, "the page never redrew"
            time.sleep(0.5)
        assert page.inner_text("#live").startswith("live: checked")
        listing = _look_index(browser, server.url)
        assert "live" in listing
        page.close()
    finally:
        proc.kill()
        proc.wait()
        server.shutdown()
        server.server_close()


def _look_index(browser, url):
    """The live view's list of runs: it loads with no script error, links each run, and is not blank."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(e))
    page.goto(url)
    text = page.inner_text("body")
    assert page.query_selector_all("a[href^='/run/']"), "the index links no run"
    from PIL import Image

    colours = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 2, "the screenshot is blank"
    page.close()
    assert errors == []
    return text
