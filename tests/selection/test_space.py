"""Search spaces: validated like the config, one line naming each problem; values reach the config exactly."""

import pytest

from trainwell.config import apply_overrides, load_config, parse_overrides
from trainwell.selection.space import SpaceError, load_space, override


@pytest.fixture
def base():
    return load_config(None, ["data.name=moons"])


def test_a_space_reads_every_distribution(base, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("optim.lr: {log_uniform: [1e-4, 1]}\nmodel.dropout: {uniform: [0, 0.5]}\n"
                    "model.depth: {int: [1, 6]}\nmodel.activation: {choice: [relu, tanh]}\n")
    space = load_space(path, base)
    assert [(d.key, d.kind, d.values) for d in space.dimensions] == [
        ("optim.lr", "log_uniform", (1e-4, 1.0)),  # PyYAML reads 1e-4 as a string: taken as the number it spells
        ("model.dropout", "uniform", (0.0, 0.5)),
        ("model.depth", "int", (1, 6)),
        ("model.activation", "choice", ("relu", "tanh"))]
    assert space.dimensions[2].grid() == [1, 2, 3, 4, 5, 6]
    assert space.to_dict()["optim.lr"] == {"log_uniform": [1e-4, 1.0]}


@pytest.mark.parametrize("value", [1e-5, 3e-300, 1e20, 0.1, 7, True, None, "relu", "1e-4", "yes", 2.0])
def test_an_override_gives_the_value_exactly(value):
    assert parse_overrides([override("k", value)]) == {"k": value}
    assert type(parse_overrides([override("k", value)])["k"]) is type(value)


def test_a_sampled_float_reaches_the_config(base):
    assert apply_overrides(base, [override("optim.lr", 1.2345678901234567e-05)]).optim.lr == 1.2345678901234567e-05


@pytest.mark.parametrize("space, words", [
    ({"optim.lrr": {"log_uniform": [1e-4, 1]}}, ["optim.lrr", "unknown config key", "did you mean optim.lr"]),
    ({"optim.lr": {"normal": [0, 1]}}, ["optim.lr", "unknown distribution 'normal'", "log_uniform"]),
    ({"optim.lr": {"uniform": [1, 0.1]}}, ["optim.lr", "low < high"]),
    ({"optim.lr": {"log_uniform": [0, 1]}}, ["optim.lr", "low > 0"]),
    ({"optim.lr": {"uniform": [0.1]}}, ["optim.lr", "[low, high]"]),
    ({"optim.lr": {"uniform": [0.1, float("nan")]}}, ["optim.lr", "finite"]),
    ({"model.depth": {"int": [1, 2.5]}}, ["model.depth", "whole numbers"]),
    ({"model.activation": {"choice": ["relu", "bogus"]}}, ["model.activation", "'bogus'", "unknown activation"]),
    ({"model.activation": {"choice": []}}, ["model.activation", "non-empty"]),
    ({"model.activation": {"choice": ["relu", "relu"]}}, ["model.activation", "twice"]),
    ({"model.width": {"int": [0, 8]}}, ["model.width = 0", "greater than or equal to 1"]),
    ({"optim.lr": {"uniform": [0.1, 1], "int": [1, 2]}}, ["optim.lr", "one distribution"]),
    ({"optim.lr": 0.1}, ["optim.lr", "one distribution"]),
    ({}, ["maps config keys to distributions"]),
])
def test_a_bad_space_is_one_line_naming_it(base, space, words):
    with pytest.raises(SpaceError) as err:
        load_space(space, base)
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message


def test_a_space_file_that_is_missing_or_not_yaml(base, tmp_path):
    with pytest.raises(SpaceError, match="space file not found"):
        load_space(tmp_path / "nope.yaml", base)
    (tmp_path / "bad.yaml").write_text("optim.lr: {log_uniform: [1e-4, 1]\n")
    with pytest.raises(SpaceError, match="invalid YAML in space file .* at line"):
        load_space(tmp_path / "bad.yaml", base)


def test_the_grid_takes_choices_and_integers_only(base):
    space = load_space({"optim.lr": {"log_uniform": [1e-4, 1]}}, base)
    with pytest.raises(SpaceError, match="grid sampler needs choice or int ranges; optim.lr is log_uniform"):
        space.grid()
