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
    ("xavier_normal", lambda n, m, g: 2 / (n + m)),  # Glorot 2010: gain 1 whatever the activation
    ("xavier_uniform", lambda n, m, g: 2 / (n + m)),
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


# ---------------------------------------------------------------- components in the zoo

@pytest.mark.parametrize("norm", ["batch", "layer", "group", "whiten", "weight", "cosine"])
@pytest.mark.parametrize("name, kind", [("mlp", "tabular"), ("cnn", "signal"), ("cnn", "image")])
def test_every_norm_builds_in_mlp_and_cnn_and_trains(norm, name, kind):
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, width=8, depth=2, norm=norm, init="he_normal")
    shape = SHAPES[kind]
    model = build_model(cfg, shape, 3, kind)
    x, y = torch.randn(6, *shape), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(1)  # the same dropout masks for both forward passes
    out = model(x)
    assert out.shape == (6, 3) and torch.isfinite(out).all()
    loss = F.cross_entropy(out, y)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():  # the gradient points downhill: a small step against it lowers the loss
        for p in model.parameters():
            if p.grad is not None:
                p -= 1e-3 * p.grad
    torch.manual_seed(1)
    assert F.cross_entropy(model(x), y) < loss


def test_maxout_widens_the_layer_before_it_by_k():
    model = build_model(ModelConfig(width=4, depth=2, activation="maxout", activation_options={"k": 3}, dropout=0),
                        (5,), 2)
    assert model.net.hidden0.linear.out_features == 12 and model.net.hidden1.linear.in_features == 4
    assert model(torch.randn(3, 5)).shape == (3, 2)
    cnn = build_model(ModelConfig(name="cnn", width=4, depth=2, activation="maxout", norm="batch"), (40,), 2, "signal")
    assert cnn.net.conv0.conv.out_channels == 8 and cnn.net.conv0.norm.num_features == 8


def test_residual_and_plain_nets_differ_only_in_the_skip():
    torch.manual_seed(0)
    residual = build_model(ModelConfig(width=6, depth=5, residual=True, norm="batch", dropout=0), (4,), 2)
    blocks = [m for m in residual.modules() if m.__class__.__name__ == "ResidualBlock"]
    assert len(blocks) == 2
    x = torch.randn(8, 4)
    out_skip = residual(x)
    for b in blocks:
        b.skip = False
    out_plain = residual(x)
    assert not torch.allclose(out_skip, out_plain)
    # by hand: the first block's output is act(body(h) + h)
    for b in blocks:
        b.skip = True
    h = residual.net.hidden0(residual.net.flatten(x))
    torch.testing.assert_close(residual.net.block0(h), torch.relu(residual.net.block0.body(h) + h))
    cnn = build_model(ModelConfig(name="cnn", width=4, depth=3, residual=True), (8, 8), 3, "image")
    assert cnn(torch.randn(2, 8, 8)).shape == (2, 3)
    with pytest.raises(TrainwellError, match="odd model.depth"):
        build_model(ModelConfig(depth=4, residual=True), (4,), 2)


@pytest.mark.parametrize("rnn_norm", ["batch_sum", "batch_input", "batch_step", "batch_between", "layer"])
def test_recurrent_zoo_models_take_a_norm_placement(rnn_norm):
    model = build_model(ModelConfig(name="lstm", width=5, depth=2, rnn_norm=rnn_norm), (12,), 3, "signal")
    assert model(torch.randn(4, 12)).shape == (4, 3)
    with pytest.raises(TrainwellError, match="recurrent models take model.rnn_norm"):
        build_model(ModelConfig(name="gru", norm="batch"), (12,), 3, "signal")


def test_choices_a_family_ignores_are_refused():
    with pytest.raises(TrainwellError, match="model.rnn_norm=layer does not apply to model 'mlp'"):
        build_model(ModelConfig(rnn_norm="layer"), (4,), 2)
    with pytest.raises(TrainwellError, match="model.residual=True does not apply to model 'gru'"):
        build_model(ModelConfig(name="gru", residual=True), (12,), 2, "signal")


def test_input_dropout_and_classic_mode_are_used():
    model = build_model(ModelConfig(width=4, depth=1, input_dropout=0.1, dropout=0.5, dropout_mode="classic"),
                        (4,), 2)
    from trainwell.nn.dropout import ClassicDropout

    assert isinstance(model.net.input_dropout, ClassicDropout) and model.net.input_dropout.p == 0.1
    assert isinstance(model.net.hidden0.dropout, ClassicDropout)


def test_init_options_and_weight_norm_layers_get_the_scheme():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 2))
    initialize(net, "normal", "relu", std=0.1)
    assert net[0].weight.std().item() == pytest.approx(0.1, rel=0.02)
    initialize(net, "he_normal", "relu", mode="fan_out")
    assert net[0].weight.var().item() == pytest.approx(2 / 300, rel=0.03)
    model = build_model(ModelConfig(width=300, depth=2, norm="weight", init="he_normal"), (400,), 2)
    w = model.net.hidden1.linear.weight  # through the parametrization: g * v / |v|
    assert w.var().item() == pytest.approx(2 / 300, rel=0.03)
    with pytest.raises(TrainwellError, match="has no option std; it takes mode"):
        initialize(net, "he_normal", "relu", std=1.0)


def test_pretrained_loads_matching_layers_and_reports_the_rest(tmp_path):
    from trainwell.io import save_model

    torch.manual_seed(0)
    source = build_model(ModelConfig(width=6, depth=2), (4,), 3)
    save_model(source, tmp_path, {"input_shape": [4], "n_classes": 3, "kind": "tabular"})
    target = build_model(ModelConfig(width=6, depth=2, init="pretrained", init_options={"run": str(tmp_path)}),
                         (4,), 5)  # a new head: 5 classes
    report = target.init_report
    assert "hidden0.linear.weight" in report["loaded"] and "hidden1.linear.bias" in report["loaded"]
    assert set(report["skipped"]) == {"out.weight", "out.bias"}
    assert "shape (3, 6) saved, (5, 6) here" in report["skipped"]["out.weight"]
    torch.testing.assert_close(target.net.hidden1.linear.weight, source.net.hidden1.linear.weight)
    with pytest.raises(TrainwellError, match="no saved model"):
        build_model(ModelConfig(init="pretrained", init_options={"run": str(tmp_path / "nope")}), (4,), 3)


def test_residual_block_and_classic_dropout_gradcheck():
    from trainwell.models import ResidualBlock
    from trainwell.nn.dropout import ClassicDropout

    torch.manual_seed(0)
    block = ResidualBlock(nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4)), nn.Tanh()).double()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))
    assert torch.autograd.gradcheck(ClassicDropout(0.3).eval(), (x,))


@pytest.mark.parametrize("rnn, gain", [(nn.RNN(8, 64, nonlinearity="relu"), math.sqrt(2)),
                                       (nn.RNN(8, 64), 5 / 3), (nn.GRU(8, 64), 5 / 3)])
def test_a_recurrent_matrix_gets_the_gain_of_its_own_nonlinearity(rnn, gain):
    """Orthogonal times the gain: every singular value of the recurrent matrix (a GRU's three stacked) is the
    gain (a ReLU recurrence with tanh's 5/3 would grow the state ~1.2x a step)."""
    torch.manual_seed(0)
    initialize(nn.Sequential(rnn, nn.Linear(64, 2)), "orthogonal", "relu")
    values = torch.linalg.svdvals(rnn.weight_hh_l0.detach().double())
    assert values.tolist() == pytest.approx([gain] * 64, rel=1e-5)
