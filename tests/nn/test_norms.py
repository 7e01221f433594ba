import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.errors import TrainwellError
from trainwell.nn.norms import BatchNorm1d, BatchNorm2d, CosineNorm, Whiten, make_norm, whitening_matrix, wrap_layer

torch.manual_seed(0)


def _same_params(ours: nn.Module, ref: nn.Module) -> None:
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(0.5, 1.5)
    ours.load_state_dict(ref.state_dict())


@pytest.mark.parametrize("shape, dims", [((16, 5), 0), ((8, 5, 11), 1), ((8, 5, 4, 4), 2)])
def test_batch_norm_matches_torch_through_training_and_eval(shape, dims):
    ours = make_norm("batch", 5, dims).double()
    ref = (nn.BatchNorm1d if dims < 2 else nn.BatchNorm2d)(5).double()
    _same_params(ours, ref)
    for _ in range(4):  # several training steps: outputs, gradients and running statistics agree
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        x_ref = x.detach().clone().requires_grad_()
        out, out_ref = ours(x), ref(x_ref)
        torch.testing.assert_close(out, out_ref)
        g = torch.randn_like(out)
        out.backward(g)
        out_ref.backward(g)
        torch.testing.assert_close(x.grad, x_ref.grad)
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    x = torch.randn(*shape, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))


def test_batch_norm_on_a_batch_of_one_says_what_to_change():
    with pytest.raises(ValueError, match="batch_size .* or model.norm=layer"):
        BatchNorm1d(3)(torch.randn(1, 3))
    BatchNorm2d(3)(torch.randn(1, 3, 4, 4))  # per-channel statistics over 16 positions: fine
    BatchNorm1d(3).eval()(torch.randn(1, 3))  # evaluation uses running estimates: fine


@pytest.mark.parametrize("shape, dims", [((6, 8), 0), ((6, 8, 9), 1), ((6, 8, 3, 3), 2)])
def test_layer_and_group_norm_match_torch(shape, dims):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    layer = make_norm("layer", 8, dims).double()
    expected = F.layer_norm(x, shape[1:]) if dims else F.layer_norm(x, (8,))
    torch.testing.assert_close(layer(x), expected)  # gamma 1, beta 0 at the start
    group = make_norm("group", 8, dims, groups=4).double()
    ref = nn.GroupNorm(4, 8).double()
    _same_params(group, ref)
    torch.testing.assert_close(group(x), ref(x))
    for module in (layer, group):
        assert torch.autograd.gradcheck(module, (x,))
    with pytest.raises(TrainwellError, match="groups dividing the 8 features"):
        make_norm("group", 8, 0, groups=3)


def test_whitening_gives_identity_covariance_and_uses_running_estimates_in_eval():
    torch.manual_seed(1)
    mix = torch.randn(4, 4, dtype=torch.float64)
    x = torch.randn(512, 4, dtype=torch.float64) @ mix + 3.0  # correlated, off-centre
    w = Whiten(4, group_size=4, eps=1e-8, affine=False).double()
    y = w(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.T @ y / len(y), torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)
    for _ in range(200):
        w(x)
    w.eval()
    y = w(x)  # running estimates have converged to the batch's (unbiased) statistics
    torch.testing.assert_close(y.T @ y / len(y), torch.eye(4, dtype=torch.float64), atol=0.01, rtol=0)
    grouped = Whiten(4, group_size=2, eps=1e-8, affine=False).double()
    y = grouped.train()(x)
    cov = y.T @ y / len(y)  # each pair is white; across pairs the correlation stays
    torch.testing.assert_close(cov[:2, :2], torch.eye(2, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(cov[2:, 2:], torch.eye(2, dtype=torch.float64), atol=1e-6, rtol=0)
    assert cov[:2, 2:].abs().max() > 0.05
    with pytest.raises(ValueError, match="group_size dividing the 4 features"):
        Whiten(4, group_size=3)
    conv = Whiten(3).double()
    xc = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    assert conv(xc).shape == xc.shape
    assert torch.autograd.gradcheck(conv, (xc,))
    state = w.state_dict()
    other = Whiten(4, group_size=4, affine=False).double()
    other.load_state_dict(state)
    assert torch.equal(other.running_cov, w.running_cov)


def test_whitening_matrix_by_hand_and_against_the_whitening_layer():
    # cov = [[2, 1], [1, 2]]: eigenvalue 3 along (1, 1)/sqrt 2, 1 along (1, -1)/sqrt 2
    cov = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    a, b = 3 ** -0.5, 1.0
    r = 2 ** -0.5
    pca = torch.tensor([[a * r, a * r], [b * r, -b * r]], dtype=torch.float64)
    zca = 0.5 * torch.tensor([[a + b, a - b], [a - b, a + b]], dtype=torch.float64)
    torch.testing.assert_close(whitening_matrix(cov, "pca", eps=0.0), pca)
    torch.testing.assert_close(whitening_matrix(cov, "zca", eps=0.0), zca)
    torch.testing.assert_close(whitening_matrix(cov, "standardise", eps=0.0),
                               torch.diag(torch.tensor([2 ** -0.5, 2 ** -0.5], dtype=torch.float64)))
    torch.manual_seed(3)
    x = torch.randn(400, 5, dtype=torch.float64) @ torch.randn(5, 5, dtype=torch.float64) + 1.0
    centred = x - x.mean(0)
    c = centred.T @ centred / len(x)
    for method in ("zca", "pca"):
        y = centred @ whitening_matrix(c, method, eps=0.0).T
        torch.testing.assert_close(y.T @ y / len(y), torch.eye(5, dtype=torch.float64), atol=1e-8, rtol=0)
    y = centred @ whitening_matrix(c, "standardise", eps=0.0).T
    torch.testing.assert_close((y.T @ y / len(y)).diagonal(), torch.ones(5, dtype=torch.float64))
    layer = Whiten(5, group_size=5, eps=1e-5, affine=False).double()
    torch.testing.assert_close(centred @ whitening_matrix(c, "zca", eps=1e-5).T, layer(x))
    with pytest.raises(ValueError, match="one of zca, pca, standardise"):
        whitening_matrix(c, "cholesky")
    with pytest.raises(ValueError, match="square covariance"):
        whitening_matrix(torch.ones(2, 3))


def test_weight_norm_output_ignores_the_scale_of_v():
    torch.manual_seed(2)
    layer = wrap_layer("weight", nn.Linear(6, 4)).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    before = layer(x)
    with torch.no_grad():
        layer.parametrizations.weight.original1.mul_(7.5)  # v
    torch.testing.assert_close(layer(x), before)
    g = layer.parametrizations.weight.original0
    torch.testing.assert_close(layer.weight.norm(dim=1), g.flatten())
    ref = nn.Linear(6, 4).double()
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        ref.bias.copy_(layer.bias)
    torch.testing.assert_close(layer(x), ref(x))
    xg = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(layer, (xg,))


@pytest.mark.parametrize("layer", [nn.Linear(6, 4), nn.Conv1d(2, 4, 3, padding=1), nn.Conv2d(2, 3, 3, stride=2)])
def test_cosine_norm_is_bounded_and_scale_invariant(layer):
    torch.manual_seed(3)
    norm = CosineNorm(layer).double()
    shape = {nn.Linear: (5, 6), nn.Conv1d: (5, 2, 9), nn.Conv2d: (5, 2, 7, 7)}[type(layer)]
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    out = norm(x)
    assert out.abs().max() <= 1.0
    torch.testing.assert_close(norm(3.0 * x), out)
    with torch.no_grad():
        layer.weight.mul_(0.2)
    torch.testing.assert_close(norm(x), out)
    assert torch.autograd.gradcheck(norm, (x,))
    if isinstance(layer, nn.Linear):  # the formula: w.x / (|w| |x|)
        w = layer.weight
        expected = (x @ w.T) / (x.norm(dim=1, keepdim=True) * w.norm(dim=1))
        torch.testing.assert_close(out, expected)


def test_unknown_norm_lists_the_valid_ones():
    with pytest.raises(TrainwellError, match="unknown norm 'btach' .*did you mean 'batch'.*valid: none, batch"):
        make_norm("btach", 3)
