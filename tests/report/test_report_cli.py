"""`trainwell train --report` and `trainwell report` from the command line."""

TINY = ["--set", "data.name=moons", "--set", "data.n_samples=200", "--set", "model.width=8",
        "--set", "train.epochs=2"]


def test_train_report_names_the_file(tmp_path, run_cli):
    code, out, err = run_cli(["train", *TINY, "-q", "--report", "--out", tmp_path / "run"])
    assert code == 0, err
    page = (tmp_path / "run" / "report.html").read_text()
    assert str(tmp_path / 'run' / 'report.html') in out.replace("\n", "")  # the summary line names it
    assert "2 of 2 epochs" in page and '<section id="layers">' in page


def test_a_failed_run_still_gets_its_report(tmp_path, run_cli):
    code, out, err = run_cli(["train", *TINY, "-q", "--report", "--set", "optim.name=sgd", "--set", "optim.lr=1e5",
                              "--out", tmp_path / "run"])
    assert code == 3
    assert "nan loss" in (tmp_path / "run" / "report.html").read_text()
    assert "report.html" in err.replace("\n", "")


def test_report_command_and_its_errors(tmp_path, run_cli):
    run_cli(["train", *TINY, "-q", "--out", tmp_path / "a"])
    code, out, _ = run_cli(["report", tmp_path / "a"])
    assert code == 0 and (tmp_path / "a" / "report.html").is_file()
    code, _, err = run_cli(["report", tmp_path])
    assert code == 2 and err.startswith("error: ") and "is not a run directory" in err and err.count("\n") <= 2
    code, _, err = run_cli(["report", tmp_path / "a", tmp_path / "a"])
    assert code == 2 and "needs --out" in err
    code, _, err = run_cli(["serve", tmp_path / "nope"])
    assert code == 2 and "no such directory" in err


def test_report_open_hands_the_written_file_to_the_browser(tmp_path, run_cli, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    run_cli(["train", *TINY, "-q", "--out", tmp_path / "a"])
    code, _, err = run_cli(["report", tmp_path / "a", "--open"])
    assert code == 0, err
    assert opened == [(tmp_path / "a" / "report.html").resolve().as_uri()]
