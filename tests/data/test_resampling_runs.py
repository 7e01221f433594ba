"""Resampling and class weights in real runs on the issue's 3-class set (weights 0.01 / 0.05 / 0.94)."""

import statistics

import pytest

import trainwell
from trainwell.errors import TrainwellError

BASE = {"data": {"name": "imbalanced"}, "model": {"width": 64, "depth": 2},
        "train": {"epochs": 20, "progress": False}, "checkpoint": {"every_epochs": None, "best": False}}


def _scores(tmp_path, overrides):
    out = []
    for seed in (0, 1, 2):
        run = trainwell.train(BASE, overrides=[f"data.seed={seed}", *overrides],
                              out=tmp_path / f"{'-'.join(overrides) or 'none'}-{seed}")
        test = run.metrics["test"]
        out.append((test["balanced_accuracy"], test["per_class_recall"][0]))
    return statistics.mean(b for b, _ in out), statistics.mean(r for _, r in out)


def test_treatments_raise_balanced_accuracy_and_minority_recall(tmp_path):
    # measured (3 seeds, 20 epochs): none 0.717 / 0.25; weights 0.809 / 0.58; smote 0.792 / 0.50;
    # random_over 0.797 / 0.50; balanced_sampler (seed 0 only) 0.787; random_under 0.646 (too few rows
    # left): not a treatment to test here
    none_bal, none_rec = _scores(tmp_path, [])
    for treatment in (["loss=weighted_cross_entropy"], ["data.imbalance.method=smote"],
                      ["data.imbalance.method=random_over"], ["data.imbalance.method=balanced_sampler"]):
        bal, rec = _scores(tmp_path, treatment)
        assert bal > none_bal + 0.03 and rec > none_rec + 0.1, (treatment, bal, none_bal, rec, none_rec)


def test_metrics_json_has_what_imbalance_needs(tmp_path):
    run = trainwell.train(BASE, overrides=["train.epochs=2", "data.imbalance.method=random_under"], out=tmp_path / "r")
    test = run.metrics["test"]
    assert set(test) >= {"per_class_recall", "per_class_precision", "balanced_accuracy", "macro_f1",
                         "confusion_matrix"}
    matrix = test["confusion_matrix"]
    assert sum(map(sum, matrix)) == len(run.data.test)  # validation and test keep their real rows
    counts = run.data.class_counts().tolist()
    assert counts[0] == counts[1] == counts[2]  # the training split was balanced


def test_bad_resampling_requests_are_one_line_errors(tmp_path):
    with pytest.raises(TrainwellError, match="data.imbalance.method=smote: .*k_neighbors"):
        trainwell.train(BASE, overrides=["data.imbalance.method=smote", "data.n_samples=300"], out=tmp_path / "a")
    with pytest.raises(TrainwellError, match="nearmiss has no argument k; it takes"):
        trainwell.train(BASE, overrides=["data.imbalance.method=nearmiss", "data.imbalance.k=3"], out=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_the_balanced_sampler_draws_every_class_equally_often():
    import torch

    from trainwell.data import Split
    from trainwell.data.samplers import balanced_row_weights
    from trainwell.loop.trainer import Trainer

    y = torch.cat([torch.zeros(950, dtype=torch.long), torch.ones(50, dtype=torch.long)])
    split = Split(torch.randn(1000, 2), y)
    model = torch.nn.Linear(2, 2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1), torch.nn.functional.cross_entropy, split,
                      epochs=1, row_weights=balanced_row_weights(y))
    order = trainer._start_epoch()["order"]
    assert len(order) == 1000 and abs((y[order] == 1).float().mean().item() - 0.5) < 0.05
