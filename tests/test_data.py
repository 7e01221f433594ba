import random

import numpy as np
import pytest
import torch

from trainwell.data import DATASETS, load_data

SMALL = {"mnist1d": 1000}


SEQUENCE_TASKS = {"copy", "reverse", "sort", "addition"}


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if n not in SEQUENCE_TASKS])
def test_every_data_set_splits_cleanly(name):
    data = load_data(name, n_samples=SMALL.get(name))
    sizes = [len(data.train), len(data.val), len(data.test)]
    assert min(sizes) > 0
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == data.input_shape
        assert torch.isfinite(split.x).all()
        assert int(split.y.min()) >= 0 and int(split.y.max()) < data.n_classes
    # every class is in every split (stratified), and the test split shares no row with train/val
    for split in (data.train, data.val, data.test):
        assert set(split.y.tolist()) == set(range(data.n_classes))
    flat = lambda s: {tuple(r) for r in s.x.reshape(len(s), -1).tolist()}  # noqa: E731
    assert not flat(data.test) & flat(data.train)
    assert not flat(data.val) & flat(data.train)
    # standardisation statistics come from the training split alone
    x = data.train.x.double()
    torch.testing.assert_close(data.mean.double(), x.mean(0), rtol=1e-5, atol=1e-5)
    std = x.std(0, unbiased=False)
    torch.testing.assert_close(data.std.double(), torch.where(std < 1e-8, torch.ones_like(std), std),
                               rtol=1e-5, atol=1e-5)


def test_shapes_and_kinds():
    assert load_data("mnist1d", n_samples=1000).input_shape == (40,)
    digits = load_data("digits")
    assert digits.kind == "image" and digits.input_shape == (8, 8) and digits.n_classes == 10
    assert load_data("breast_cancer").input_shape == (30,)
    assert load_data("spiral").n_classes == 3 and load_data("blobs").n_classes == 4


def test_mnist1d_keeps_its_own_test_split_and_callers_random_state():
    random.seed(123)
    np.random.seed(123)
    py_before, np_before = random.getstate(), np.random.get_state()
    data = load_data("mnist1d", n_samples=1000, seed=7)
    assert random.getstate() == py_before
    np_after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(np_before, np_after))
    assert len(data.test) == 200  # mnist1d's own 80/20 split
    assert len(data.train) + len(data.val) == 800


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = load_data("moons", seed=1), load_data("moons", seed=1), load_data("moons", seed=2)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_noise_and_size_are_settable():
    quiet, noisy = load_data("xor", noise=0.0, n_samples=400), load_data("xor", noise=0.5, n_samples=400)
    assert len(quiet.train) + len(quiet.val) + len(quiet.test) == 400
    # without noise the label is exactly the sign of x1*x2
    x, y = quiet.train.x, quiet.train.y
    assert torch.equal((x[:, 0] * x[:, 1] > 0).long(), y)
    x, y = noisy.train.x, noisy.train.y
    assert not torch.equal((x[:, 0] * x[:, 1] > 0).long(), y)


def test_unstratifiable_split_is_a_clear_error():
    from trainwell.errors import TrainwellError

    with pytest.raises(TrainwellError, match="class counts"):
        load_data("blobs", n_samples=20, test_fraction=0.05)


@pytest.mark.parametrize("task", sorted(SEQUENCE_TASKS))
def test_sequence_tasks_compute_their_targets(task):
    data = load_data(task, n_samples=300, length=5, vocab=7)
    assert data.kind == "sequence" and data.n_classes == 7 and data.target_length == (6 if task == "addition" else 5)
    x, y = data.train.x.numpy(), data.train.y.numpy()
    assert x.dtype == np.int64 and y.dtype == np.int64
    if task == "copy":
        assert (y == x).all()
    elif task == "reverse":
        assert (y == x[:, ::-1]).all()
    elif task == "sort":
        assert (y == np.sort(x, 1)).all()
    else:  # the digits of a + b in base 7, most significant first
        assert data.input_vocab == 8 and (x[:, 5] == 7).all()
        value = lambda digits: digits @ (7 ** np.arange(digits.shape[1] - 1, -1, -1))  # noqa: E731
        assert (value(x[:, :5]) + value(x[:, 6:]) == value(y)).all()
    assert len(data.train) + len(data.val) + len(data.test) == 300


def test_sequence_task_options_are_checked():
    from trainwell.errors import TrainwellError

    with pytest.raises(TrainwellError, match="has no option width; it takes length"):
        load_data("copy", width=3)
    with pytest.raises(TrainwellError, match="vocab must be an integer >= 2"):
        load_data("copy", vocab=1)


def test_mnist1d_shuffle_seq_permutes_the_positions_of_the_same_rows():
    plain = load_data("mnist1d", n_samples=500, seed=3)
    shuffled = load_data("mnist1d", n_samples=500, seed=3, shuffle_seq=True)
    a, b = plain.train.x.numpy(), shuffled.train.x.numpy()
    # column j of the shuffled rows is column perm[j] of the plain ones: one permutation for every row and split
    perm = [int(np.flatnonzero(np.all(np.isclose(a, b[:, [j]], atol=1e-5), axis=0))[0]) for j in range(a.shape[1])]
    assert sorted(perm) == list(range(40)) and perm != list(range(40))
    assert np.allclose(b, a[:, perm], atol=1e-5)
    assert np.allclose(shuffled.test.x.numpy(), plain.test.x.numpy()[:, perm], atol=1e-5)
    assert torch.equal(plain.train.y, shuffled.train.y) and torch.equal(plain.test.y, shuffled.test.y)


def test_adding_problem_marks_one_step_in_each_half_and_sums_their_values():
    from trainwell.data import make_adding_problem

    x, y = make_adding_problem(200, length=10, seed=4)
    assert x.shape == (200, 10, 2) and y.shape == (200,) and x.dtype == np.float32
    markers = x[..., 1]
    assert np.all(markers.sum(1) == 2) and np.all(markers[:, :5].sum(1) == 1) and np.all(markers[:, 5:].sum(1) == 1)
    assert np.all((x[..., 0] >= 0) & (x[..., 0] < 1))
    # by hand, row 0: the two marked values
    marked = np.flatnonzero(markers[0])
    assert y[0] == np.float32(x[0, marked[0], 0] + x[0, marked[1], 0])
    assert np.allclose((x[..., 0] * markers).sum(1), y, atol=1e-6)
    again, _ = make_adding_problem(200, length=10, seed=4)
    assert np.array_equal(x, again)
    # predicting the mean scores Var(u1 + u2) = 1/6
    big = make_adding_problem(20000, length=10, seed=0)[1]
    assert abs(np.mean((big - 1.0) ** 2) - 1 / 6) < 0.01
    with pytest.raises(ValueError, match="length"):
        make_adding_problem(5, length=1)
