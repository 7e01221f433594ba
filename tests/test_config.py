import pytest
import yaml

from trainwell.config import Config, ConfigError, apply_overrides, load_config, parse_overrides


def test_defaults_fill_every_key_and_round_trip(tmp_path):
    cfg = Config()
    assert cfg.data.name == "mnist1d" and cfg.model.name == "mlp"
    assert cfg.model.depth == 3 and cfg.model.width == 256  # the family's defaults are filled in
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(path) == cfg
    assert set(yaml.safe_load(cfg.to_yaml())) == {"name", "seed", "data", "model", "optim", "reg", "clip", "schedule",
                                                  "checkpoint",
                                                  "train", "loss", "loss_options", "early_stopping", "doctor", "log",
                                                  "one_class"}


def test_the_run_name_follows_data_and_model_unless_given():
    assert Config().run_name == "mnist1d-mlp"
    moved = apply_overrides(Config(), ["data.name=moons", "model.name=cnn"])
    assert moved.name is None and moved.run_name == "moons-cnn"  # not the default's name, kept from before
    assert apply_overrides(moved, ["name=mine"]).run_name == "mine"


def test_family_defaults_depend_on_model_name():
    gru = load_config(None, ["model.name=gru"])
    assert (gru.model.depth, gru.model.width) == (1, 128)
    assert load_config(None, ["model.name=gru", "model.width=32"]).model.width == 32


def test_overrides_parse_yaml_scalars():
    tree = parse_overrides(["model.width=64", "train.progress=false", "optim.betas=[0.8, 0.9]", "name=x"])
    assert tree == {"model": {"width": 64}, "train": {"progress": False}, "optim": {"betas": [0.8, 0.9]},
                    "name": "x"}
    cfg = load_config(None, ["model.width=64", "optim.betas=[0.8, 0.9]"])
    assert cfg.model.width == 64 and cfg.optim.betas == (0.8, 0.9)
    assert apply_overrides(cfg, ["optim.lr=0.5"]).optim.lr == 0.5 and cfg.optim.lr == 1e-3


def test_overrides_win_over_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  width: 8\n  depth: 1\n")
    cfg = load_config(path, ["model.width=9"])
    assert (cfg.model.width, cfg.model.depth) == (9, 1)


@pytest.mark.parametrize("overrides, expected", [
    (["data.bach_size=3"], "unknown config key 'data.bach_size'; did you mean data.batch_size"),
    (["model.batch_size=3"], "did you mean data.batch_size"),
    (["lr=0.1"], "did you mean optim.lr"),
    (["data.name=mnist"], "unknown dataset 'mnist' (did you mean 'mnist1d'"),
    (["model.name=transformer"], "valid: logistic, mlp, cnn, rnn, gru, lstm"),
    (["model.activation=rleu"], "unknown activation 'rleu' (did you mean 'relu'"),
    (["model.norm=batchnorm"], "unknown norm 'batchnorm'"),
    (["model.init=kaiming"], "unknown init 'kaiming'"),
    (["optim.name=adamx"], "unknown optimizer 'adamx'"),
    (["loss=hinge"], "unknown loss 'hinge'"),
    (["optim.lr=-1"], "invalid config key 'optim.lr': Input should be greater than 0"),
    (["optim.lr=.nan"], "optim.lr"),
    (["model.width=abc"], "invalid config key 'model.width'"),
    (["model.dropout=1"], "model.dropout"),
    (["train.epochs=0"], "train.epochs"),
    (["train.device=tpu"], "device must be"),
    (["optim.betas=[0.9, 1.5]"], "betas must each lie in [0, 1)"),
    (["model=3"], "config key 'model' must be a mapping"),
    (["width"], "--set needs key=value"),
    (["=3"], "--set has an empty key"),
    (["model..width=3"], "--set has an empty key"),
    (["early_stopping.monitor=val_acc"], "invalid config key 'early_stopping.monitor': not a history key; use one "
                                         "of val_loss, val_accuracy"),
    (["schedule.monitor=loss"], "schedule.monitor"),
])
def test_bad_overrides_give_one_line(overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_bad_files_give_one_line(tmp_path):
    cases = {"missing": (tmp_path / "nope.yaml", "config file not found"),
             "dir": (tmp_path, "is a directory")}
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: {width: 3\n")
    cases["yaml"] = (bad_yaml, "invalid YAML in")
    a_list = tmp_path / "list.yaml"
    a_list.write_text("- 1\n- 2\n")
    cases["list"] = (a_list, "must be a mapping of keys, got list")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    cases["binary"] = (binary, "cannot read config")
    for name, (path, expected) in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert expected in str(info.value), name
        assert "\n" not in str(info.value), name


def test_empty_yaml_file_is_the_default(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == Config()
