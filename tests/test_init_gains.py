"""Named initialisations mean what the papers and torch.nn.init mean: Xavier gain 1, He the activation's gain."""

import math

import pytest
import torch
from torch import nn

from trainwell.errors import TrainwellError
from trainwell.init import INITS, initialize

N, M = 120, 80


def _net(activation=nn.ReLU):
    return nn.Sequential(nn.Linear(N, M), activation(), nn.Linear(M, 3))


def _torch_draws(fill_hidden, fill_out):
    """What torch.nn.init draws for the two weight matrices, in initialize()'s order, from seed 0."""
    torch.manual_seed(0)
    hidden, out = torch.empty(M, N), torch.empty(3, M)
    fill_hidden(hidden)
    fill_out(out)
    return hidden, out


TORCH = {  # scheme -> activation -> (hidden layer's fill, output layer's fill: gain 1)
    "xavier_normal": lambda act: (nn.init.xavier_normal_, nn.init.xavier_normal_),
    "xavier_uniform": lambda act: (nn.init.xavier_uniform_, nn.init.xavier_uniform_),
    "he_normal": lambda act: (lambda w: nn.init.kaiming_normal_(w, nonlinearity=act),
                              lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear")),
    "he_uniform": lambda act: (lambda w: nn.init.kaiming_uniform_(w, nonlinearity=act),
                               lambda w: nn.init.kaiming_uniform_(w, nonlinearity="linear")),
    "orthogonal": lambda act: (lambda w: nn.init.orthogonal_(w, gain=nn.init.calculate_gain(act)),
                               nn.init.orthogonal_),
}


@pytest.mark.parametrize("scheme", list(TORCH))
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_schemes_draw_exactly_what_torch_nn_init_draws(scheme, activation):
    net = _net()
    torch.manual_seed(0)
    initialize(net, scheme, activation)
    hidden, out = _torch_draws(*TORCH[scheme](activation))
    assert torch.equal(net[0].weight.detach(), hidden)
    assert torch.equal(net[2].weight.detach(), out)
    assert torch.count_nonzero(net[0].bias) == 0


@pytest.mark.parametrize("scheme", ["xavier_normal", "xavier_uniform"])
def test_xavier_ignores_the_activation_and_takes_a_gain_option(scheme):
    relu, tanh, scaled = _net(), _net(nn.Tanh), _net()
    for net, activation in ((relu, "relu"), (tanh, "tanh")):
        torch.manual_seed(0)
        initialize(net, scheme, activation)
    assert torch.equal(relu[0].weight, tanh[0].weight)  # the activation plays no part
    fill = getattr(nn.init, scheme + "_")
    hidden, out = _torch_draws(lambda w: fill(w, gain=2.5), lambda w: fill(w, gain=2.5))
    torch.manual_seed(0)
    initialize(scaled, scheme, "relu", gain=2.5)
    assert torch.equal(scaled[0].weight.detach(), hidden) and torch.equal(scaled[2].weight.detach(), out)
    # both have Glorot's variance 2/(n+m), not ReLU's doubled one
    big = nn.Sequential(nn.Linear(600, 400), nn.ReLU(), nn.Linear(400, 2))
    initialize(big, scheme, "relu")
    assert big[0].weight.var().item() == pytest.approx(2 / 1000, rel=0.03)
    with pytest.raises(TrainwellError, match="gain must be a finite number > 0"):
        initialize(_net(), scheme, "relu", gain=-1.0)


def test_he_takes_the_activation_gain_and_refuses_a_gain_option():
    big = nn.Sequential(nn.Linear(600, 400), nn.ReLU(), nn.Linear(400, 2))
    initialize(big, "he_normal", "relu")
    assert big[0].weight.var().item() == pytest.approx(2 / 600, rel=0.03)  # He 2015: 2/n_in
    initialize(big, "he_normal", "tanh")
    assert big[0].weight.var().item() == pytest.approx((5 / 3) ** 2 / 600, rel=0.03)
    with pytest.raises(TrainwellError, match="has no option gain"):
        initialize(big, "he_normal", "relu", gain=2.0)


def test_a_relu_recurrence_keeps_xavier_at_gain_one():
    rnn = nn.RNN(64, 64, nonlinearity="relu")
    initialize(rnn, "xavier_normal", "relu")
    w = rnn.weight_hh_l0.detach().double()
    assert w.var().item() == pytest.approx(2 / 128, rel=0.06)


def _gradient_ratio(fill_or_scheme, depth=30, width=256, seed=0):
    """|dL/dx| at the first layer's input over |dL/dh| at the last hidden layer's input (He 2015, Fig. 3)."""
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(width, 10)).double()
    torch.manual_seed(seed + 1)
    if isinstance(fill_or_scheme, str):
        initialize(net, fill_or_scheme, "relu")
    else:
        for m in net:
            if isinstance(m, nn.Linear):
                fill_or_scheme(m.weight)
                nn.init.zeros_(m.bias)
    x = torch.randn(128, width, dtype=torch.float64, requires_grad=True)
    inputs = {}
    last = net[2 * (depth - 1)]
    last.register_forward_pre_hook(lambda mod, args: inputs.update(last=args[0]) or args[0].retain_grad())
    out = net(x)
    out.pow(2).sum().backward()
    return (x.grad.norm() / inputs["last"].grad.norm()).item()


def test_at_depth_30_xavier_collapses_the_backward_signal_under_relu_and_he_keeps_it():
    xavier = _gradient_ratio("xavier_normal")
    he = _gradient_ratio("he_normal")
    # each ReLU layer halves the backward variance under Xavier: about 2^(-29/2) = 4e-5 over 29 layers
    assert xavier < 1e-3
    assert 0.2 < he < 5
    # the same draws through torch.nn.init give the same collapse (but for the output layer: gain 1 either way)
    assert xavier == pytest.approx(_gradient_ratio(nn.init.xavier_normal_), rel=1e-9)
    assert he == pytest.approx(_gradient_ratio(lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")), rel=0.5)
    assert math.log2(xavier) == pytest.approx(-29 / 2, abs=3)


def test_every_description_says_which_gain_it_applies():
    for entry in INITS:
        if entry.name != "pretrained":
            assert "gain" in entry.description, entry.name
    for name in ("xavier_normal", "xavier_uniform"):
        assert "gain 1 whatever the activation" in INITS.entry(name).description
    for name in ("he_normal", "he_uniform", "orthogonal"):
        assert "activation's gain" in INITS.entry(name).description
