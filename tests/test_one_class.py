import numpy as np
import pytest
from sklearn.datasets import make_blobs

from trainwell.one_class import OneClassAutoencoder


def test_trained_on_one_class_it_flags_the_others():
    x, y = make_blobs(n_samples=2000, centers=4, n_features=5, random_state=0)
    normal, others = x[y == 0], x[y != 0]
    det = OneClassAutoencoder(epochs=100).fit(normal[:400])
    held = det.predict(normal[400:])
    flagged = det.predict(others)
    # by design ~5% of normal rows are over the threshold; the other classes are far away
    assert 0.0 <= (held == -1).mean() < 0.15
    assert (flagged == -1).mean() > 0.95
    assert det.score_samples(normal[400:]).mean() > det.score_samples(others).mean()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite rows"):
        OneClassAutoencoder().fit(np.array([[np.nan, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="quantile"):
        OneClassAutoencoder(quantile=1.5).fit(np.ones((4, 2)))


def test_one_class_is_reachable_by_config_and_cli(tmp_path):
    import json

    from typer.testing import CliRunner

    import trainwell
    from trainwell.cli import app
    from trainwell.runs import train_one_class

    cfg = {"seed": 1, "data": {"name": "imbalanced", "n_samples": 600}, "one_class": {"epochs": 60}}
    result = train_one_class(cfg, out=tmp_path / "py")
    data = trainwell.load_data("imbalanced", n_samples=600)
    assert result["normal_class"] == int(data.class_counts().argmax())
    test = result["test"]
    assert test["rows"] == len(data.test)
    truth = (data.test.y != result["normal_class"]).long()
    assert sum(sum(r) for r in test["confusion_matrix"]) == len(truth)
    assert sum(test["confusion_matrix"][1]) == int(truth.sum())  # row 1: the true outliers
    assert test["balanced_accuracy"] > 0.6  # better than chance on the rare class
    assert json.loads((tmp_path / "py" / "metrics.json").read_text())["test"] == test
    cli = CliRunner().invoke(app, ["one-class", "--set", "data.name=imbalanced", "--set", "data.n_samples=600",
                                   "--set", "seed=1", "--set", "one_class.epochs=60", "--out", str(tmp_path / "cli")])
    assert cli.exit_code == 0, cli.output
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["test"] == test  # the same run
    bad = CliRunner().invoke(app, ["one-class", "--set", "one_class.normal_class=7", "--set", "data.name=moons"])
    assert bad.exit_code != 0
