"""Config fuzzing: any YAML document or --set string gives a valid config or one readable line."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwell.config import Config, ConfigError, load_config

KEYS = ["name", "seed", "loss", "data", "model", "optim", "reg", "clip", "schedule", "checkpoint", "train",
        "data.name", "data.batch_size", "data.val_fraction", "model.name", "model.width", "model.depth",
        "model.activation", "model.norm", "model.dropout", "model.init", "optim.name", "optim.lr", "optim.betas",
        "optim.momentum", "optim.options", "optim.lr_multipliers", "reg.l1", "reg.l1_mode", "clip.max_norm",
        "schedule.name", "schedule.warmup_epochs", "checkpoint.keep", "train.epochs", "train.device", "nope",
        "model.nope", "data..name", ""]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["mlp", "adam", "relu", "moons", "cosine", "1e-3",
                                                          "nan", "inf", "-1", "[0.9, 0.99]", "{a: 1}"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
                      max_leaves=8)


def _check(call):
    try:
        cfg = call()
    except ConfigError as err:
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message
        return
    assert isinstance(cfg, Config)


def _to_yaml_tree(keys_values):
    tree = {}
    for key, value in keys_values:
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = value
    return tree


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=5))
def test_random_yaml_documents(tmp_path_factory, keys_values):
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(yaml.safe_dump(_to_yaml_tree(keys_values)))
    _check(lambda: load_config(path))


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=string.printable, max_size=80))
def test_random_yaml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text)
    _check(lambda: load_config(path))


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30),
                          st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS),
                                    st.text(alphabet=string.printable, max_size=15))), max_size=4))
def test_random_set_strings(overrides):
    _check(lambda: load_config(None, overrides))


@pytest.mark.parametrize("text", ["model: !!python/object/apply:os.system ['echo pwned']",
                                  "a: &a [*a]", "? [1, 2]\n: 3", "model:\n  width: 1e400"])
def test_hostile_yaml_is_refused_without_running_anything(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    _check(lambda: load_config(path))
