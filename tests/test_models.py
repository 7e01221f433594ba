import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.config import ModelConfig
from trainwell.errors import TrainwellError
from trainwell.init import INITS, initialize
from trainwell.models import MODELS, build_model
from trainwell.nn import ACTIVATIONS, NORMS, ChannelLayerNorm, make_norm

SHAPES = {"tabular": (5,), "signal": (40,), "image": (8, 8)}
SEQUENCE_MODELS = {"cnn", "rnn", "gru", "lstm"}


def _cases():
    for name in MODELS.names():
        if name == "seq2seq":  # tested in tests/nn/test_seq2seq.py
            continue
        for kind in SHAPES:
            if kind == "tabular" and name in SEQUENCE_MODELS:
                continue
            yield name, kind


@pytest.mark.parametrize("name, kind", list(_cases()))
def test_every_model_runs_forward_and_backward(name, kind):
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, width=8, depth=2 if name != "logistic" else 0)
    shape = SHAPES[kind]
    model = build_model(cfg, shape, 3, kind, torch.zeros(shape), torch.ones(shape))
    x = torch.randn(6, *shape)
    out = model(x)
    assert out.shape == (6, 3)
    F.cross_entropy(out, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(SEQUENCE_MODELS))
def test_sequence_models_refuse_tabular_data(name):
    with pytest.raises(TrainwellError, match="signal or image data"):
        build_model(ModelConfig(name=name), (5,), 2, "tabular")


def test_standardize_layer_uses_the_given_statistics():
    mean, std = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])
    model = build_model(ModelConfig(name="logistic"), (2,), 2, "tabular", mean, std)
    x = torch.tensor([[3.0, 6.0]])
    torch.testing.assert_close(model.standardize(x), torch.tensor([[1.0, 1.0]]))
    assert "standardize.mean" in model.state_dict()


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("position", ["before", "after"])
def test_mlp_block_order_follows_norm_position(norm, position):
    model = build_model(ModelConfig(depth=1, width=4, norm=norm, norm_position=position, dropout=0.1),
                        (3,), 2, "tabular")
    names = [n for n, _ in model.net.hidden0.named_children()]
    expected = ["linear", "norm", "act", "dropout"] if position == "before" else ["linear", "act", "norm", "dropout"]
    assert names == expected


def test_mlp_activation_and_dropout_are_the_named_ones():
    model = build_model(ModelConfig(depth=2, width=4, activation="tanh", dropout=0.3), (3,), 2, "tabular")
    assert isinstance(model.net.hidden1.act, nn.Tanh)
    assert model.net.hidden1.dropout.p == 0.3


def test_channel_layer_norm_matches_torch_layer_norm_in_float64():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 7, dtype=torch.float64)
    ln = ChannelLayerNorm(3).double()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 2.0)
        ln.bias.normal_()
    expected = F.layer_norm(x, (3, 7), eps=1e-5) * ln.weight.view(1, 3, 1) + ln.bias.view(1, 3, 1)
    torch.testing.assert_close(ln(x), expected)
    assert torch.autograd.gradcheck(ln, (x.clone().requires_grad_(),))


def test_norm_registry_builds_torch_norms_per_layout():
    assert isinstance(make_norm("batch", 5, 0), nn.BatchNorm1d)
    assert isinstance(make_norm("batch", 5, 2), nn.BatchNorm2d)
    assert isinstance(make_norm("layer", 5, 0), nn.LayerNorm)
    assert set(NORMS.names()) >= {"none", "batch", "layer"}


def test_activation_metadata_matches_derivatives():
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64, requires_grad=True)
    for name in ("sigmoid", "tanh", "relu", "leaky_relu"):
        act = ACTIVATIONS.get(name)().double()
        (grad,) = torch.autograd.grad(act(x).sum(), x)
        assert grad.max().item() == pytest.approx(ACTIVATIONS.entry(name).meta["grad_bound"], abs=1e-4), name


@pytest.mark.parametrize("scheme, variance", [
    ("normal", lambda n, m, g: 0.01 ** 2),
    ("standard_uniform", lambda n, m, g: 1 / (3 * n)),
    ("xavier_normal", lambda n, m, g: g * g * 2 / (n + m)),
    ("xavier_uniform", lambda n, m, g: g * g * 2 / (n + m)),
    ("he_normal", lambda n, m, g: g * g / n),
    ("he_uniform", lambda n, m, g: g * g / n),
    ("orthogonal", lambda n, m, g: g * g / max(n, m)),
])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_init_schemes_hit_their_target_variance(scheme, variance, activation):
    torch.manual_seed(0)
    n, m = 400, 300
    net = nn.Sequential(nn.Linear(n, m), nn.ReLU(), nn.Linear(m, 2))
    initialize(net, scheme, activation)
    gain = nn.init.calculate_gain(activation)
    w = net[0].weight.double()
    target = variance(n, m, gain)
    # sampling error of a variance estimate from 120k draws is well under 2%
    assert w.var().item() == pytest.approx(target, rel=0.03)
    assert torch.count_nonzero(net[0].bias) == 0
    assert net[2].weight.var().item() == pytest.approx(variance(m, 2, 1.0), rel=0.25)  # output layer: gain 1


def test_he_uniform_bound_is_sqrt_6_over_fan_in():
    net = nn.Sequential(nn.Linear(150, 100), nn.ReLU(), nn.Linear(100, 2))
    initialize(net, "he_uniform", "relu")
    assert net[0].weight.abs().max().item() <= math.sqrt(6 / 150)
    assert net[0].weight.abs().max().item() > 0.98 * math.sqrt(6 / 150)


def test_default_init_leaves_torch_defaults():
    torch.manual_seed(1)
    a = nn.Linear(4, 4)
    torch.manual_seed(1)
    b = initialize(nn.Linear(4, 4), "default")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert "default" in INITS
