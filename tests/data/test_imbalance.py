"""Samplers against imbalanced-learn on the same data (imbalanced-learn is a test dependency only)."""

from collections import Counter

import numpy as np
import pytest
from sklearn.datasets import make_classification

from trainwell.data.imbalance import SMOTE, NearMiss, RandomOverSampler, RandomUnderSampler, sampling_targets

imblearn = pytest.importorskip("imblearn")
from imblearn.over_sampling import SMOTE as ISMOTE  # noqa: E402
from imblearn.over_sampling import RandomOverSampler as IROS  # noqa: E402
from imblearn.under_sampling import NearMiss as INearMiss  # noqa: E402
from imblearn.under_sampling import RandomUnderSampler as IRUS  # noqa: E402

X3, Y3 = make_classification(n_samples=600, n_features=5, n_informative=3, n_classes=3, n_clusters_per_class=1,
                             weights=[0.01, 0.05, 0.94], random_state=0)  # the 3-class set
X2, Y2 = make_classification(n_samples=400, n_features=4, n_classes=2, weights=[0.85, 0.15], random_state=1)

STRATEGIES_OVER = ["auto", "minority", "not minority", "all", {0: 300, 1: 400}]
STRATEGIES_UNDER = ["auto", "majority", "not majority", "all", {2: 100, 1: 20}]


def _counts(y):
    return dict(Counter(y.tolist()))


@pytest.mark.parametrize("strategy", STRATEGIES_OVER)
@pytest.mark.parametrize("ours, theirs", [(RandomOverSampler, IROS), (SMOTE, ISMOTE)])
def test_over_samplers_give_imbalanced_learns_class_counts(ours, theirs, strategy):
    kw = {"k_neighbors": 3} if ours is SMOTE else {}
    _, y_ours = ours(sampling_strategy=strategy, random_state=0, **kw).fit_resample(X3, Y3)
    _, y_theirs = theirs(sampling_strategy=strategy, random_state=0, **kw).fit_resample(X3, Y3)
    assert _counts(y_ours) == _counts(y_theirs)


@pytest.mark.parametrize("strategy", STRATEGIES_UNDER)
@pytest.mark.parametrize("ours, theirs", [(RandomUnderSampler, IRUS), (NearMiss, INearMiss)])
def test_under_samplers_give_imbalanced_learns_class_counts(ours, theirs, strategy):
    kw = {} if ours is NearMiss else {"random_state": 0}
    _, y_ours = ours(sampling_strategy=strategy, **kw).fit_resample(X3, Y3)
    _, y_theirs = theirs(sampling_strategy=strategy, **kw).fit_resample(X3, Y3)
    assert _counts(y_ours) == _counts(y_theirs)


@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_float_ratios_match_on_two_classes(ratio):
    for ours, theirs in [(RandomOverSampler, IROS), (RandomUnderSampler, IRUS)]:
        _, a = ours(sampling_strategy=ratio, random_state=0).fit_resample(X2, Y2)
        _, b = theirs(sampling_strategy=ratio, random_state=0).fit_resample(X2, Y2)
        assert _counts(a) == _counts(b)


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("X, y", [(X3, Y3), (X2, Y2)])
def test_nearmiss_selects_the_same_rows(version, X, y):
    ours = NearMiss(version=version)
    x_ours, y_ours = ours.fit_resample(X, y)
    theirs = INearMiss(version=version)
    x_theirs, y_theirs = theirs.fit_resample(X, y)
    np.testing.assert_array_equal(np.sort(ours.sample_indices_), np.sort(theirs.sample_indices_))
    np.testing.assert_array_equal(x_ours, x_theirs)
    np.testing.assert_array_equal(y_ours, y_theirs)


def test_smote_points_lie_on_segments_between_minority_neighbours():
    from sklearn.neighbors import NearestNeighbors

    smote = SMOTE(k_neighbors=3, random_state=0)
    x_res, y_res = smote.fit_resample(X3, Y3)
    assert np.array_equal(x_res[:len(X3)], X3)  # the original rows first, unchanged
    minority = X3[Y3 == 0]
    nn = NearestNeighbors(n_neighbors=4).fit(minority)
    neighbours = nn.kneighbors(minority, return_distance=False)[:, 1:]
    for x in x_res[len(X3):][y_res[len(X3):] == 0]:
        # some (row, neighbour) pair has x = a + u (b - a) with u in [0, 1]
        ok = False
        for i, a in enumerate(minority):
            for j in neighbours[i]:
                d = minority[j] - a
                u = np.dot(x - a, d) / np.dot(d, d)
                if 0 <= u <= 1 and np.allclose(a + u * d, x, atol=1e-9):
                    ok = True
                    break
            if ok:
                break
        assert ok


def test_random_samplers_keep_real_rows_and_record_them():
    ros = RandomOverSampler(random_state=0)
    x, y = ros.fit_resample(X3, Y3)
    np.testing.assert_array_equal(x, X3[ros.sample_indices_])
    rus = RandomUnderSampler(random_state=0)
    x, y = rus.fit_resample(X3, Y3)
    np.testing.assert_array_equal(x, X3[rus.sample_indices_])
    assert len(set(rus.sample_indices_.tolist())) == len(rus.sample_indices_)  # without replacement
    jitter = RandomOverSampler(random_state=0, shrinkage=1.0)
    xj, _ = jitter.fit_resample(X3, Y3)
    assert not np.allclose(xj[len(X3):], X3[jitter.sample_indices_[len(X3):]])  # copies moved by the jitter
    again, _ = RandomOverSampler(random_state=0, shrinkage=1.0).fit_resample(X3, Y3)
    np.testing.assert_array_equal(again, xj)  # random_state makes it reproducible


def test_impossible_requests_name_the_class_counts():
    with pytest.raises(ValueError, match=r"SMOTE needs more rows of class 0 than k_neighbors=5, got 4 .*class counts"):
        SMOTE().fit_resample(X3[np.r_[np.flatnonzero(Y3 == 0)[:4], np.flatnonzero(Y3 != 0)]],
                             Y3[np.r_[np.flatnonzero(Y3 == 0)[:4], np.flatnonzero(Y3 != 0)]])
    with pytest.raises(ValueError, match="over-sampling cannot remove rows"):
        RandomOverSampler(sampling_strategy={2: 10}).fit_resample(X3, Y3)
    with pytest.raises(ValueError, match="under-sampling cannot add rows"):
        RandomUnderSampler(sampling_strategy={0: 100}).fit_resample(X3, Y3)
    with pytest.raises(ValueError, match="needs two classes"):
        RandomOverSampler(sampling_strategy=0.5).fit_resample(X3, Y3)
    with pytest.raises(ValueError, match="class labels"):
        RandomOverSampler().fit_resample(X2, Y2.astype(float) + 0.5)
    with pytest.raises(ValueError, match="NaN"):
        RandomOverSampler().fit_resample(np.where(X2 > 2, np.nan, X2), Y2)
    assert sampling_targets(Y3, "auto", "under") == {1: _counts(Y3)[0], 2: _counts(Y3)[0]}
