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
