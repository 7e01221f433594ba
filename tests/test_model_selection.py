import json

import numpy as np
import pytest
import torch

from trainwell.errors import TrainwellError
from trainwell.selection import cross_validate, fold_indices, train_ensemble
from trainwell.runs import evaluate_run, load_model

QUICK = {"model": {"width": 32, "depth": 2}, "checkpoint": {"every_epochs": None, "best": False},
         "train": {"progress": False}}


def test_folds_partition_the_rows_and_keep_the_class_shares():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    folds = fold_indices(y, 5, seed=0)
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(100))  # every row validates exactly once
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == 100
        assert np.bincount(y[val]).tolist() == [10, 6, 4]  # stratified: the same shares in every fold


def test_a_class_with_fewer_rows_than_folds_is_a_clear_error():
    with pytest.raises(TrainwellError, match=r"at least 5 rows of every class, got class counts \{0: 20, 1: 1\}"):
        fold_indices(np.array([0] * 20 + [1]), 5, seed=0)


def test_cross_validation_reports_folds_and_chooses_the_epoch_count(tmp_path):
    result = cross_validate({**QUICK, "data": {"name": "moons", "n_samples": 300}, "train": {"epochs": 6}},
                            folds=3, out=tmp_path / "cv", final_fit=True)
    saved = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert saved["chosen_epochs"] == result["chosen_epochs"] == round(np.mean([f["best_epoch"]
                                                                                 for f in saved["folds"]]))
    assert len(saved["folds"]) == 3 and saved["std"]["best_val_loss"] >= 0
    final = saved["final"]
    assert 0.5 < final["test"]["accuracy"] <= 1.0
    assert f"epochs: {result['chosen_epochs']}" in (tmp_path / "cv" / "final" / "config.yaml").read_text()


def test_cross_validation_in_two_worker_processes(tmp_path):
    cfg = {**QUICK, "data": {"name": "blobs", "n_samples": 200}, "train": {"epochs": 2}}
    result = cross_validate(cfg, folds=2, jobs=2, out=tmp_path / "cv")
    alone = cross_validate(cfg, folds=2, jobs=1, out=tmp_path / "cv-1")  # the same folds in this process
    for two, one in zip(result["folds"], alone["folds"], strict=True):
        assert two["best_epoch"] == one["best_epoch"]
        assert two["best_val_loss"] == pytest.approx(one["best_val_loss"], rel=1e-4)  # thread counts differ
        assert two["best_val_accuracy"] == pytest.approx(one["best_val_accuracy"], abs=1e-9)


def test_an_ensemble_beats_its_mean_member_and_loads_like_one_model(tmp_path):
    # measured: 5 members trained 5 epochs on digits, test accuracy 0.80 averaged vs 0.60 per member
    cfg = {**QUICK, "data": {"name": "digits"}, "train": {"epochs": 5}}
    result = train_ensemble(cfg, members=5, out=tmp_path / "ens")
    mean_member = np.mean([m["test_accuracy"] for m in result["members"]])
    assert result["test"]["accuracy"] > mean_member + 0.05
    model = load_model(tmp_path / "ens")
    assert evaluate_run(tmp_path / "ens")["accuracy"] == pytest.approx(result["test"]["accuracy"])
    x = torch.randn(3, 8, 8)
    probs = torch.stack([torch.softmax(m(x), 1) for m in model.members]).mean(0)
    torch.testing.assert_close(model(x).exp(), probs)


def test_varying_members_and_bagging(tmp_path):
    cfg = {**QUICK, "data": {"name": "moons", "n_samples": 200}, "train": {"epochs": 2}}
    result = train_ensemble(cfg, members=3, vary=["init", "model.width=8,16"], bagging=True, combine="vote",
                            out=tmp_path / "ens")
    changes = [m["changes"] for m in result["members"]]
    assert changes[0] == ["seed=0", "model.init=he_normal", "model.width=8"]
    assert changes[1] == ["seed=1", "model.init=xavier_normal", "model.width=16"]
    with pytest.raises(TrainwellError, match="--vary takes seed, init or key=v1,v2"):
        train_ensemble(cfg, members=2, vary=["width"], out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # nothing written

@pytest.mark.parametrize("epochs, members", [(60, 3), pytest.param(150, 4, marks=pytest.mark.slow)])
def test_easy_ensemble_and_balance_cascade_lift_balanced_accuracy(tmp_path, epochs, members):
    from trainwell.selection import balance_cascade

    # measured on the imbalanced set (seed 0): one model 0.59 balanced accuracy; EasyEnsemble of 4 members
    # 0.79; BalanceCascade of 4 rounds 0.80 (members see ~90 balanced rows, hence 150 epochs); the quick
    # version, 3 members of 60 epochs: 0.78 and 0.77
    base = {**QUICK, "data": {"name": "imbalanced"}, "train": {"epochs": 15}}
    plain = trainwell_train(base, tmp_path / "plain").metrics["test"]["balanced_accuracy"]
    more = [f"train.epochs={epochs}"]
    easy = train_ensemble(base, overrides=more, members=members, balance=True, out=tmp_path / "easy")
    cascade = balance_cascade(base, overrides=more, rounds=members, out=tmp_path / "cascade")
    assert easy["test"]["balanced_accuracy"] > plain + 0.1
    assert cascade["test"]["balanced_accuracy"] > plain + 0.1
    pools = [m["pool_rows"] for m in cascade["members"]]
    assert pools == sorted(pools, reverse=True) and pools[-1] < pools[0]  # the pool shrinks round by round


def trainwell_train(cfg, out):
    import trainwell

    return trainwell.train(cfg, out=out)


def test_samme_boosting_of_weak_networks(tmp_path):
    import math

    from trainwell.selection import boost

    # measured (seed 0): one 2-unit network 0.665 test accuracy on xor, 8 boosted ones 0.905
    base = {**QUICK, "data": {"name": "xor"}, "model": {"width": 2, "depth": 1, "dropout": 0},
            "optim": {"lr": 0.01}, "train": {"epochs": 40}, "doctor": {"enabled": False}}
    single = trainwell_train(base, tmp_path / "single").metrics["test"]["accuracy"]
    result = boost(base, rounds=8, out=tmp_path / "boost")
    assert result["test"]["accuracy"] > single + 0.1
    for m in result["members"]:  # SAMME's say: log((1 - err) / err) + log(K - 1), K = 2
        assert m["alpha"] == pytest.approx(math.log((1 - m["weighted_error"]) / m["weighted_error"]))
    model = load_model(tmp_path / "boost")
    assert model.combine == "weighted_vote" and model.weights.tolist() == pytest.approx(
        [m["alpha"] for m in result["members"]])
