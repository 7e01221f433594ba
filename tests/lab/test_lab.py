"""The lab: every experiment's --quick run in one module fixture (result.json complete, verdict recomputable,
PNGs decodable and not blank), the Python API, the CLI's bad inputs and the HTML report."""

import json
import math
import os
import sys

import pytest

import trainwell.lab as lab
from trainwell.cli import main
from trainwell.errors import TrainwellError
from trainwell.lab import Experiment, Result
from trainwell.lab.runner import run_many

REQUIRED = {"name", "claim", "source", "criterion", "verdict", "measurements", "config", "seeds", "seconds", "quick"}
NEEDS_OPTUNA = {"hyperparameter_search"}  # the tune extra; without it the experiment fails in one line


def _unavailable(name):
    import importlib.util

    return name in NEEDS_OPTUNA and importlib.util.find_spec("optuna") is None


def run_cli(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["trainwell", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Every experiment, --quick, two at a time in worker processes (as `trainwell lab run all --quick --jobs 2`)."""
    root = tmp_path_factory.mktemp("lab") / "all"
    results = run_many(list(lab.EXPERIMENTS), root, quick=True, jobs=2)
    return root, results


def _png_ok(path):
    from PIL import Image

    assert path.stat().st_size > 0
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG" and img.width > 50 and img.height > 50
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 1, f"{path.name} has a single colour"


@pytest.mark.parametrize("name", list(lab.EXPERIMENTS))
def test_quick_result_is_complete(quick_run, name):
    root, _ = quick_run
    d = json.loads((root / name / "result.json").read_text())
    if _unavailable(name):
        assert d["verdict"] == "error" and "needs Optuna" in d["reason"] and "\n" not in d["reason"]
        pytest.skip("the tune extra (optuna) is not installed")
    assert REQUIRED <= set(d), REQUIRED - set(d)
    assert d["verdict"] in ("confirmed", "refuted", "inconclusive"), d["reason"] + "\n" + str(d.get("error"))
    assert d["name"] == name and d["quick"] is True and d["seconds"] > 0 and d["seeds"]
    e = lab.EXPERIMENTS[name]
    assert set(e.keys) <= set(d["measurements"])
    assert "../shared" not in d["source"] and d["criterion"] and d["claim"]
    # the verdict is the criterion applied to the stored measurements, not written by hand
    assert e.verdict(d["measurements"], e.quick)[0] == d["verdict"]
    pngs = sorted((root / name).glob("*.png"))
    assert pngs
    for p in pngs:
        _png_ok(p)
    readme = (root / name / "README.md").read_text()
    assert d["verdict"] in readme and d["criterion"] in readme and d["claim"] in readme


def test_plots_are_drawn_from_result_json_alone(quick_run, tmp_path):
    root, _ = quick_run
    for name in lab.EXPERIMENTS:
        if _unavailable(name):
            continue
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_bytes((root / name / "result.json").read_bytes())
        paths = Result.read(tmp_path / name).plot()
        assert paths and all(p.parent == tmp_path / name for p in paths)
        for p in paths:
            _png_ok(p)


def test_lab_json_and_report(quick_run, monkeypatch, capsys):
    root, results = quick_run
    summary = json.loads((root / "lab.json").read_text())
    assert summary["verdicts"] == {r.name: r.verdict for r in results} and summary["quick"] is True
    code, out, err = run_cli(["lab", "report", root], monkeypatch, capsys)
    assert code == 0, err
    page = (root / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= len([n for n in lab.EXPERIMENTS if not _unavailable(n)])
    for r in results:
        assert f'id="{r.name}"' in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_values_against_formulas(quick_run):
    root, _ = quick_run
    m = {n: json.loads((root / n / "result.json").read_text())["measurements"] for n in lab.EXPERIMENTS}
    assert m["activation_derivatives"]["max_derivative"]["sigmoid"] == pytest.approx(0.25, abs=1e-6)
    assert m["activation_derivatives"]["max_derivative"]["tanh"] == pytest.approx(1.0, abs=1e-6)
    steps = m["adam_bias_correction"]["step_over_lr"]
    assert steps["corrected"][0] == pytest.approx(1.0, rel=1e-6)
    assert steps["uncorrected"][0] == pytest.approx(0.1 / math.sqrt(0.001), rel=1e-5)  # (1-b1)/sqrt(1-b2)
    assert steps["notes"][0] == pytest.approx(1.0, rel=1e-5)  # the notes' constants are exact at t = 1 only
    err = m["dropout_scaling"]["relative_error"]["scale_by_p"]
    assert err["0.2"] == pytest.approx(abs(0.2 - 0.8) / 0.2, rel=0.05)  # E[train] = 0.8 x, eval = 0.2 x
    assert err["0.5"] < 0.05


def test_python_api_run_and_plot(tmp_path):
    result = lab.run("init_schemes", quick=True, seeds=1, out=tmp_path / "out")
    assert result.verdict in ("confirmed", "refuted", "inconclusive") and result.quick and result.seeds == [0]
    assert result.measurements["ratio_last_first"]["relu"]["he_normal"]["activation"] > 0
    assert result.dir == tmp_path / "out" / "init_schemes" and (result.dir / "result.json").exists()
    paths = result.plot(tmp_path / "again")
    assert paths and all(p.exists() for p in paths)


def test_api_bad_input():
    with pytest.raises(TrainwellError, match="valid names: all, activation_derivatives"):
        lab.run("no_such_experiment")
    with pytest.raises(TrainwellError, match="seeds must be >= 1"):
        lab.run("init_schemes", seeds=0)


def test_cli_list(monkeypatch, capsys):
    code, out, _ = run_cli(["lab", "list"], monkeypatch, capsys)
    assert code == 0
    for name in lab.EXPERIMENTS:
        assert name in out
    assert "../shared" not in out


def test_cli_unknown_name_is_one_line(monkeypatch, capsys):
    code, out, err = run_cli(["lab", "run", "init_shemes", "--quick"], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: unknown experiment 'init_shemes'")
    assert all(name in err for name in lab.EXPERIMENTS)


@pytest.mark.parametrize("args", [["--seeds", "0"], ["--jobs", "0"]])
def test_cli_bad_numbers(args, monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(["lab", "run", "init_schemes", *args, "--out", tmp_path / "o"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cli_out_holding_a_run_gets_a_new_subdirectory(tmp_path, monkeypatch, capsys):
    out = tmp_path / "lab"
    code, stdout, err = run_cli(["lab", "run", "init_schemes", "--quick", "--out", out], monkeypatch, capsys)
    assert code == 0, err
    assert "init_schemes" in stdout and any(v in stdout for v in ("confirmed", "inconclusive", "refuted"))
    first = (out / "init_schemes" / "result.json").read_bytes()
    code, stdout, err = run_cli(["lab", "run", "init_schemes", "--quick", "--out", out], monkeypatch, capsys)
    assert code == 0, err
    assert (out / "init_schemes" / "result.json").read_bytes() == first  # never overwritten
    assert (out / "run-2" / "init_schemes" / "result.json").exists() and str(out / "run-2") in stdout
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(["lab", "run", "init_schemes", "--out", tmp_path / "file"], monkeypatch, capsys)
    assert code == 2 and "is a file" in err and (tmp_path / "file").read_text() == "x"


def _crash(cfg, seeds):
    raise RuntimeError("boom: the experiment broke")


def _die(cfg, seeds):
    os._exit(3)


@pytest.mark.skipif(sys.platform == "win32", reason="the injected experiments reach workers pickled by reference to this module")
def test_crashing_experiments_are_errors_and_the_others_run(tmp_path, monkeypatch, capsys):
    base = lab.EXPERIMENTS["init_schemes"]
    fields = {k: getattr(base, k) for k in Experiment.__dataclass_fields__}
    monkeypatch.setitem(lab.EXPERIMENTS, "crashes", Experiment(**{**fields, "name": "crashes", "run": _crash}))
    monkeypatch.setitem(lab.EXPERIMENTS, "dies", Experiment(**{**fields, "name": "dies", "run": _die}))
    code, out, err = run_cli(["lab", "run", "crashes", "dies", "init_schemes", "--quick", "--jobs", "2",
                              "--out", tmp_path], monkeypatch, capsys)
    assert code == 0, err
    crashed = json.loads((tmp_path / "crashes" / "result.json").read_text())
    assert crashed["verdict"] == "error" and "boom: the experiment broke" in crashed["reason"]
    assert "boom" in out
    died = json.loads((tmp_path / "dies" / "result.json").read_text())
    assert died["verdict"] == "error" and "exited with code 3" in died["reason"]
    assert json.loads((tmp_path / "init_schemes" / "result.json").read_text())["verdict"] != "error"
    assert (tmp_path / "crashes" / "README.md").exists()
    code, _, err = run_cli(["lab", "report", tmp_path], monkeypatch, capsys)
    assert code == 0 and "boom" in (tmp_path / "report.html").read_text()


def test_report_escapes_every_string(tmp_path, monkeypatch, capsys):
    hostile = '<script>alert("x")</script>&<img src=x onerror=1>'
    d = tmp_path / "evil"
    d.mkdir()
    record = {k: hostile for k in ("name", "claim", "source", "criterion", "reason", "setup")}
    record.update(verdict="refuted", measurements={}, config={}, seeds=[0], seconds=1.0, quick=True, error=hostile)
    (d / "result.json").write_text(json.dumps(record))
    code, _, err = run_cli(["lab", "report", tmp_path], monkeypatch, capsys)
    assert code == 0, err
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "<img src=x" not in page and "&lt;script&gt;" in page


def test_report_bad_input(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["lab", "report", tmp_path], monkeypatch, capsys)
    assert code == 2 and "no experiment results" in err and err.count("\n") == 1
    code, _, err = run_cli(["lab", "report", tmp_path / "missing"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "result.json").write_text("{not json")
    code, _, err = run_cli(["lab", "report", tmp_path], monkeypatch, capsys)
    assert code == 2 and "cannot read" in err


def test_lab_report_in_a_browser(quick_run, browser, monkeypatch, capsys):
    """The lab's page in Debian's chromium: no script error, every plot decoded and drawn, not blank."""
    import io

    from PIL import Image

    root, results = quick_run
    code, _, err = run_cli(["lab", "report", root], monkeypatch, capsys)
    assert code == 0, err
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto((root / "report.html").as_uri())
    images = page.query_selector_all("img")
    assert len(images) == sum(len(list(r.dir.glob("*.png"))) for r in results) > 0
    for img in images:
        size = img.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight]")
        assert size[0] and size[1] > 0 and size[2] > 0
    assert len(page.query_selector_all("section[id]")) == len(results)
    colours = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 20  # None: more colours than that
    assert problems == []
    page.close()
