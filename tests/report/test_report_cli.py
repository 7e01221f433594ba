"""`trainwell train --report` and `trainwell report` from the command line."""

import sys

import pytest

from trainwell.cli import main

TINY = ["--set", "data.name=moons", "--set", "data.n_samples=200", "--set", "model.width=8",
        "--set", "train.epochs=2"]


def run_cli(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["trainwell", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


def test_train_report_names_the_file(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["train", *TINY, "-q", "--report", "--out", tmp_path / "run"], monkeypatch, capsys)
    assert code == 0, err
    page = (tmp_path / "run" / "report.html").read_text()
    assert str(tmp_path / 'run' / 'report.html') in out.replace("\n", "")  # the summary line names it
    assert "2 of 2 epochs" in page and '<section id="layers">' in page


def test_a_failed_run_still_gets_its_report(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["train", *TINY, "-q", "--report", "--set", "optim.name=sgd", "--set", "optim.lr=1e5",
                              "--out", tmp_path / "run"], monkeypatch, capsys)
    assert code == 3
    assert "nan loss" in (tmp_path / "run" / "report.html").read_text()
    assert "report.html" in err.replace("\n", "")


def test_report_command_and_its_errors(tmp_path, monkeypatch, capsys):
    run_cli(["train", *TINY, "-q", "--out", tmp_path / "a"], monkeypatch, capsys)
    code, out, _ = run_cli(["report", tmp_path / "a"], monkeypatch, capsys)
    assert code == 0 and (tmp_path / "a" / "report.html").is_file()
    code, _, err = run_cli(["report", tmp_path], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and "is not a run directory" in err and err.count("\n") <= 2
    code, _, err = run_cli(["report", tmp_path / "a", tmp_path / "a"], monkeypatch, capsys)
    assert code == 2 and "needs --out" in err
    code, _, err = run_cli(["serve", tmp_path / "nope"], monkeypatch, capsys)
    assert code == 2 and "no such directory" in err
