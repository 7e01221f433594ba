"""The playground in Debian's chromium, used as a person would: a preset, play, the loss falls, the doctor speaks."""

import io
import json
import re
import time

import trainwell.lab as lab
from trainwell.playground.knobs import PRESETS


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#knobs select")
    return page, problems


def _until(page, test, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, page.inner_text("#status")
        page.wait_for_timeout(200)  # lets Playwright take the page's events (its URL, say) meanwhile


def _url_lr(page):
    """The learning rate the page's link holds, as a number (JavaScript writes 1.0 as "1")."""
    found = re.search(r"optim\.lr=([^&]+)", page.url)
    return float(found.group(1)) if found else None


def _history(server):
    return json.loads(server.session.snapshot).get("history") or {}


def _surface_colours(page):
    return page.evaluate("""() => { const c = document.getElementById('surface');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);
        return seen.size; }""")


def test_a_preset_trains_the_loss_falls_and_the_surface_draws(browser, server):
    page, problems = _open(browser, server.url)
    index = next(i for i, p in enumerate(PRESETS) if p["name"] == "batch norm on")
    page.select_option("#preset", str(index))
    _until(page, lambda: "model.norm=batch" in page.url)
    page.click("#play")
    _until(page, lambda: server.session.config.model.norm == "batch" and
           len(_history(server).get("train_loss") or []) >= 15)
    page.click("#pause")
    losses = [v for v in _history(server)["train_loss"] if v is not None]
    assert losses[-1] < losses[0]
    _until(page, lambda: "paused" in page.inner_text("#status"))
    assert _surface_colours(page) > 20  # a decision surface with points, not a blank canvas
    assert page.query_selector_all("#layers tr")
    drawn = page.evaluate("() => [...document.querySelectorAll('canvas.hist')].filter(c => { const d = "
                          "c.getContext('2d').getImageData(0, 0, c.width, c.height).data; "
                          "return d.some((v, i) => i % 4 === 3 && v > 0); }).length")
    assert drawn >= 6  # the input distribution of each of the 6 activations
    shot = page.screenshot()
    from PIL import Image

    colours = Image.open(io.BytesIO(shot)).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50
    assert problems == []
    page.close()


def test_the_broken_preset_gets_a_finding_whose_remedy_applies(browser, server):
    page, problems = _open(browser, server.url)
    index = next(i for i, p in enumerate(PRESETS) if p["name"].startswith("NaN"))
    page.select_option("#preset", str(index))
    _until(page, lambda: "optim.lr=10" in page.url)
    # the preset links to its lab experiment: the link opens that experiment's claim and criterion
    with page.context.expect_page() as opened:
        page.click("#lab-link")
    lab_page = opened.value
    lab_page.wait_for_load_state()
    experiment = lab.EXPERIMENTS[PRESETS[index]["lab"]]
    assert lab_page.url.endswith("/lab/" + experiment.name)
    assert experiment.claim in lab_page.inner_text("body") and experiment.criterion in lab_page.inner_text("body")
    lab_page.close()
    page.click("#play")
    page.wait_for_selector(".finding.error", timeout=90_000)
    assert "nan loss" in page.inner_text("#findings")
    _until(page, lambda: page.query_selector("button.apply") is not None)
    before = server.session.config.optim.lr
    page.click("button.apply")
    _until(page, lambda: server.session.config.optim.lr < before)
    _until(page, lambda: _url_lr(page) == server.session.config.optim.lr)  # the link is the new experiment
    assert problems == []
    page.close()


def test_the_url_is_the_experiment(browser, server):
    page, problems = _open(browser, server.url + "#model.depth=3&model.activation=tanh&optim.name=sgd")
    _until(page, lambda: server.session.config.model.activation == "tanh")
    assert server.session.config.model.depth == 3 and server.session.config.optim.name == "sgd"
    assert page.eval_on_selector("select[data-key='model.activation']", "s => s.value") == "tanh"
    assert problems == []
    page.close()
