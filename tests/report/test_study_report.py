"""`trainwell report STUDY_DIR`: a study's page, checked as values against the study's own Optuna storage."""

import hashlib
import html
import json
import re

import pytest

optuna = pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed: pip install -e '.[tune]'")

from report_runs import HOSTILE, TINY, write_run, write_study  # noqa: E402
from trainwell.errors import TrainwellError  # noqa: E402
from trainwell.report import write_report, write_study_report  # noqa: E402
from trainwell.selection import tune  # noqa: E402


def _trials(root):
    journal = optuna.storages.journal
    storage = journal.JournalStorage(journal.JournalFileBackend(str(root / "journal.log")))
    study = optuna.load_study(study_name="tiny", storage=storage)
    return study, study.get_trials()


def _rows(page):
    """trial number -> (its row's HTML, its value cell's text), from the trials table."""
    row = r'<tr class="trial[^"]*" id="trial-(\d+)">(.*?<td class="num value">([^<]*)</td>.*?)</tr>'
    return {int(n): (html_, value) for n, html_, value in re.findall(row, page)}


def test_the_page_lists_exactly_the_studys_trials_with_their_values(study):
    page = write_study_report(study).read_text()
    optuna_study, trials = _trials(study)
    rows = _rows(page)
    assert sorted(rows) == sorted(t.number for t in trials) == list(range(8))
    for t in trials:
        row, value = rows[t.number]
        assert value == (f"{t.value:.4g}" if t.value is not None else "-"), t.number
        assert f'<span class="badge {t.state.name.lower()}">' in row
        if t.state.name == "PRUNED":  # by the doctor, with its symptom and cause
            assert f"the doctor: {t.user_attrs['symptom'].replace('_', ' ')}" in row
            assert t.user_attrs["cause"].replace("_", " ") in row
        if t.state.name == "FAIL":
            assert html.escape(t.user_attrs["error"]) in row
    best = [n for n, (row, _) in rows.items() if 'class="badge best"' in row]
    assert best == [optuna_study.best_trial.number] and f'<tr class="trial best-trial" id="trial-{best[0]}">' in page
    # each trial with a run directory links its own run's report, written beside it
    linked = re.findall(r'href="(trial-\d+)/report.html"', page)
    assert linked == [f"trial-{t.number}" for t in trials if (study / f"trial-{t.number}").is_dir()]
    assert len(linked) == 4 and all((study / d / "report.html").is_file() for d in linked)
    # the history: one dot a trial with a value, the best marked
    values = [t for t in trials if t.value is not None]
    assert page.count('<circle class="dot"') == len(values) >= 2 and 'class="marker best best-marker"' in page
    assert "data:image/png;base64," in page and (study / "best.yaml").read_text() in html.unescape(page)
    assert [sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")] == [2, 2, 4]
    assert html.escape(json.loads((study / "summary.json").read_text())["line"]) in page


def test_every_string_of_a_study_is_escaped(study, tmp_path):
    page = write_study_report(study).read_text()
    assert "<script" not in page and "<img src=x" not in page and html.escape(HOSTILE) in page
    reports = list(study.glob("trial-*/report.html"))  # half of them name their run with the hostile string
    assert len(reports) == 4 and not any("<script" in r.read_text() for r in reports)
    # a study written by hand with a hostile string in every field the page shows
    rows = [{"number": 0, "state": "COMPLETE", "value": "0.5", HOSTILE: HOSTILE, "dir": HOSTILE},
            {"number": 1, "state": "PRUNED", "value": "nan", HOSTILE: HOSTILE, "died_of": HOSTILE, "symptom": HOSTILE,
             "cause": HOSTILE},
            {"number": 2, "state": "FAIL", "value": "", "error": HOSTILE, "retried_as": HOSTILE}]
    summary = {"line": HOSTILE, "notes": [HOSTILE], "errors": [HOSTILE], "best": {"number": 0, "changes": HOSTILE}}
    d = write_study(tmp_path / "h", rows, name=HOSTILE, summary=summary,
                    files={"best.yaml": HOSTILE.encode(), "importance.png": HOSTILE.encode()})
    page = write_study_report(d).read_text()
    assert "<script" not in page and "<img src=x" not in page and page.count(html.escape(HOSTILE)) >= 10
    assert "importance.png is not a PNG image" in page
    assert "href" not in _rows(page)[0][0]  # its dir is no plain name inside the study: not linked, nor written to


def test_a_study_with_no_finished_trial_is_one_line(tmp_path, run_cli):
    s = tune({**TINY, "name": "tiny"}, {"optim.lr": {"log_uniform": [1e-2, 1e-1]}}, trials=5, out=tmp_path / "s",
             timeout=1e-9)  # the worker's time is up before its first trial
    assert s["counts"]["trials"] == 0
    code, out, err = run_cli(["report", tmp_path / "s"])
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: the study 'tiny' in ") and "has no finished trial yet" in err
    assert not (tmp_path / "s" / "report.html").exists()


def test_writing_the_page_changes_nothing_but_report_files(study, tmp_path):
    def tree():
        return {p.relative_to(study).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(study.rglob("*")) if p.is_file() and p.name != "report.html"}

    write_study_report(study)
    before, stamps = tree(), {p: p.stat().st_mtime_ns for p in study.glob("trial-*/report.html")}
    page = write_report(study, tmp_path / "page.html").read_text()  # elsewhere: its links lead back to the study
    assert tree() == before
    assert {p: p.stat().st_mtime_ns for p in study.glob("trial-*/report.html")} == stamps  # up to date: not rewritten
    for href in re.findall(r'href="([^"#]+)"', page):
        assert (tmp_path / href).resolve().is_file(), href


def test_bad_study_input_is_one_line(study, tmp_path):
    with pytest.raises(TrainwellError, match="a study's report shows one study"):
        write_report([study, write_run(tmp_path / "run", [{"epoch": 1, "train_loss": 1.0}])], tmp_path / "x.html")
    with pytest.raises(TrainwellError, match="would overwrite a run's or a study's file"):
        write_report(study, study / "trials.csv")
    d = write_study(tmp_path / "bad", [{"number": 0, "state": "COMPLETE", "value": "0.5"}])
    (d / "trials.csv").write_text("no,header\n1,2\n")
    with pytest.raises(TrainwellError, match="trials.csv cannot be read"):
        write_report(d)
