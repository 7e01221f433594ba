"""Samplers against imbalanced-learn on the same data (imbalanced-learn is a test dependency only)."""

from collections import Counter

import numpy as np
import pytest
from sklearn.datasets import make_classification

from trainwell.data.imbalance import SMOTE, NearMiss, RandomOverSampler, RandomUnderSampler, resample_split, sampling_targets

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


# --- issue 17: the sklearn / imbalanced-learn protocol (imbalanced-learn's own suite: test_imblearn_suite.py) ---

def test_samplers_are_full_sklearn_estimators_in_imblearns_pipeline():
    from imblearn.pipeline import make_pipeline
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_score

    for sampler in (NearMiss(version=2), SMOTE(k_neighbors=3), RandomOverSampler(shrinkage={0: 1.0}),
                    RandomUnderSampler(replacement=True)):
        twin = clone(sampler)
        assert twin is not sampler and twin.get_params() == sampler.get_params()
    grid = GridSearchCV(make_pipeline(SMOTE(random_state=0), LogisticRegression()),
                        {"smote__k_neighbors": [3, 5]}, cv=3).fit(X2, Y2)
    assert grid.best_params_["smote__k_neighbors"] in (3, 5) and len(grid.cv_results_["params"]) == 2
    scores = cross_val_score(make_pipeline(NearMiss(), LogisticRegression()), X2, Y2, cv=3)
    assert scores.shape == (3,) and ((0 < scores) & (scores <= 1)).all()
    assert SMOTE().set_params(k_neighbors=2).k_neighbors == 2
    fitted = RandomUnderSampler().fit(X2, Y2)
    assert fitted.sampling_strategy_ == {0: _counts(Y2)[1]} and fitted.n_features_in_ == X2.shape[1]
    np.testing.assert_array_equal(fitted.get_feature_names_out(), [f"x{i}" for i in range(X2.shape[1])])


def test_same_draws_as_imbalanced_learn_for_one_random_state():
    ours, theirs = RandomOverSampler(random_state=3), IROS(random_state=3)
    ours.fit_resample(X3, Y3), theirs.fit_resample(X3, Y3)
    np.testing.assert_array_equal(ours.sample_indices_, theirs.sample_indices_)
    ours, theirs = RandomUnderSampler(random_state=3, replacement=True), IRUS(random_state=3, replacement=True)
    ours.fit_resample(X3, Y3), theirs.fit_resample(X3, Y3)
    np.testing.assert_array_equal(ours.sample_indices_, theirs.sample_indices_)
    ours, theirs = RandomUnderSampler(random_state=3), IRUS(random_state=3)
    ours.fit_resample(X3, Y3), theirs.fit_resample(X3, Y3)  # the same rows, ours in their original order
    theirs_sorted = [np.sort(theirs.sample_indices_[Y3[theirs.sample_indices_] == c]) for c in (0, 1, 2)]
    np.testing.assert_array_equal(ours.sample_indices_, np.concatenate(theirs_sorted))
    x_ours, _ = SMOTE(random_state=3).fit_resample(X2, Y2)
    x_theirs, _ = ISMOTE(random_state=3).fit_resample(X2, Y2)
    np.testing.assert_allclose(x_ours, x_theirs)


def test_counts_and_strategies_that_cannot_be_met_are_value_errors():
    majority = max(_counts(Y3), key=_counts(Y3).get)
    with pytest.raises(ValueError, match="wants -10 rows of class 2; a count cannot be negative"):
        NearMiss(sampling_strategy={majority: -10}).fit_resample(X3, Y3)
    assert sampling_targets(Y3, "auto", "over-sampling") == sampling_targets(Y3, "auto", "over") == {
        0: _counts(Y3)[2] - _counts(Y3)[0], 1: _counts(Y3)[2] - _counts(Y3)[1]}
    with pytest.raises(ValueError, match="kind must be 'over-sampling' or 'under-sampling', got 'sideways'"):
        sampling_targets(Y3, "auto", "sideways")
    with pytest.raises(ValueError, match="'majority' is not one of .*over-sampling"):
        sampling_targets(Y3, "majority", "over-sampling")
    with pytest.raises(ValueError, match="The 'sampling_strategy' parameter of RandomOverSampler must be"):
        RandomOverSampler(sampling_strategy="majority").fit_resample(X3, Y3)
    with pytest.raises(ValueError, match=r"y has 1 class \{0: 20\}; resampling needs at least two classes"):
        SMOTE().fit_resample(X3[:20], np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="The 'k_neighbors' parameter of SMOTE must be an int in the range"):
        SMOTE(k_neighbors=0).fit_resample(X2, Y2)


@pytest.mark.parametrize("sampler", [RandomOverSampler(), RandomUnderSampler(), SMOTE(), NearMiss()],
                         ids=lambda s: type(s).__name__)
def test_every_sampler_refuses_nan_and_infinity(sampler):
    for bad in (np.nan, np.inf):
        x = X2.copy()
        x[3, 1] = bad
        with pytest.raises(ValueError, match="X holds NaN or infinite values"):
            sampler.fit_resample(x, Y2)


@pytest.mark.filterwarnings("ignore:NearMiss-3 found")
@pytest.mark.parametrize("make", [lambda: RandomOverSampler(random_state=0), lambda: RandomUnderSampler(random_state=0),
                                  lambda: SMOTE(random_state=0), lambda: NearMiss(version=3)],
                         ids=["ros", "rus", "smote", "nearmiss"])
def test_containers_in_are_containers_out(make):
    pd = pytest.importorskip("pandas")
    from scipy import sparse

    x_ref, y_ref = make().fit_resample(X2, Y2)
    frame = pd.DataFrame(X2, columns=["a", "b", "c", "d"])
    x_df, y_s = make().fit_resample(frame, pd.Series(Y2, name="label"))
    assert list(x_df.columns) == ["a", "b", "c", "d"] and y_s.name == "label"
    np.testing.assert_allclose(x_df.to_numpy(), x_ref)
    np.testing.assert_array_equal(y_s.to_numpy(), y_ref)
    assert x_df.index.equals(y_s.index)
    x_l, y_l = make().fit_resample(X2.tolist(), Y2.tolist())
    assert isinstance(x_l, list) and isinstance(y_l, list)
    np.testing.assert_allclose(x_l, x_ref)
    x_sp, y_sp = make().fit_resample(sparse.csr_matrix(X2), Y2)
    assert sparse.issparse(x_sp) and x_sp.format == "csr"
    np.testing.assert_allclose(x_sp.toarray(), x_ref)
    x_f, y_f = make().fit_resample(X2, Y2.astype(float))  # whole-number float labels
    assert y_f.dtype == np.float64
    np.testing.assert_array_equal(y_f, y_ref)
    x_32, _ = make().fit_resample(X2.astype(np.float32), Y2)
    assert x_32.dtype == np.float32
    np.testing.assert_allclose(x_32, x_ref, rtol=1e-5, atol=1e-5)
    one_hot = np.eye(2, dtype=int)[Y2]
    _, y_oh = make().fit_resample(X2, one_hot)
    np.testing.assert_array_equal(y_oh, np.eye(2, dtype=int)[y_ref])


def test_callable_strategies_neighbour_objects_shrinkage_dicts_and_replacement():
    from sklearn.neighbors import NearestNeighbors

    def half_of_the_majority(y):
        counts = _counts(y)
        return {c: max(n, max(counts.values()) // 2) for c, n in counts.items()}

    _, y = RandomOverSampler(sampling_strategy=half_of_the_majority).fit_resample(X3, Y3)
    assert _counts(y) == {c: max(n, _counts(Y3)[2] // 2) for c, n in _counts(Y3).items()}
    with pytest.raises(ValueError, match="a callable sampling_strategy must return a dict"):
        RandomOverSampler(sampling_strategy=lambda y: 3).fit_resample(X3, Y3)
    a, _ = SMOTE(k_neighbors=NearestNeighbors(n_neighbors=4), random_state=1).fit_resample(X3, Y3)
    b, _ = SMOTE(k_neighbors=3, random_state=1).fit_resample(X3, Y3)
    np.testing.assert_array_equal(a, b)
    nm = NearMiss(n_neighbors=NearestNeighbors(n_neighbors=3)).fit(X3, Y3)
    nm_int, nm_obj = NearMiss(), NearMiss(n_neighbors=NearestNeighbors(n_neighbors=3))
    nm_int.fit_resample(X3, Y3), nm_obj.fit_resample(X3, Y3)
    np.testing.assert_array_equal(nm_int.sample_indices_, nm_obj.sample_indices_)
    assert nm.sampling_strategy_ and nm_obj.nn_.n_neighbors == 3
    ros = RandomOverSampler(shrinkage={0: 0.0, 1: 2.0}, random_state=0)
    x, y = ros.fit_resample(X3, Y3)
    assert ros.shrinkage_ == {0: 0.0, 1: 2.0}
    new = np.arange(len(X3), len(x))
    exact = np.all(x[new] == X3[ros.sample_indices_[new]], axis=1)
    assert exact[y[new] == 0].all() and not exact[y[new] == 1].any()  # factor 0: copies; 2: jittered
    with pytest.raises(ValueError, match="`shrinkage` should contain a shrinkage factor for each class"):
        RandomOverSampler(shrinkage={0: 1.0}).fit_resample(X3, Y3)
    rus = RandomUnderSampler(replacement=True, random_state=0, sampling_strategy={2: 500})
    rus.fit_resample(X3, Y3)
    kept = rus.sample_indices_[Y3[rus.sample_indices_] == 2]
    assert len(kept) == 500 and len(set(kept.tolist())) < 500  # drawn with replacement: repeats


def test_resample_split_keeps_the_tensor_dtypes():
    import torch

    x = torch.as_tensor(X3, dtype=torch.float32).reshape(len(X3), 5, 1)
    y = torch.as_tensor(Y3)
    for method in ("smote", "random_over", "random_under", "nearmiss"):
        xr, yr = resample_split(x, y, method, seed=0)
        assert xr.dtype == torch.float32 and xr.shape[1:] == (5, 1) and yr.dtype == y.dtype
        assert len(set(_counts(yr.numpy()).values())) == 1  # balanced
