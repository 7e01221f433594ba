import pytest
import torch
from torch import nn

from trainwell.nn.recurrent import RNN_NORMS, NormRNN, RecurrentLayer

TORCH = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _copy_from_torch(ours: NormRNN, ref: nn.RNNBase) -> None:
    with torch.no_grad():
        for i, layer in enumerate(ours.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer, name).copy_(getattr(ref, f"{name}_l{i}"))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_cells_without_norm_match_torch_in_float64(cell):
    torch.manual_seed(0)
    ref = TORCH[cell](3, 6, num_layers=2, batch_first=True).double()
    ours = NormRNN(cell, 3, 6, num_layers=2).double()
    _copy_from_torch(ours, ref)
    x = torch.randn(4, 9, 3, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, state = ours(x)
    out_ref, state_ref = ref(x_ref)
    torch.testing.assert_close(out, out_ref)
    for a, b in zip(state, state_ref if cell == "lstm" else (state_ref,)):
        torch.testing.assert_close(a, b)
    g = torch.randn_like(out)
    out.backward(g)
    out_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)
    for i, layer in enumerate(ours.layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            torch.testing.assert_close(getattr(layer, name).grad, getattr(ref, f"{name}_l{i}").grad)


@pytest.mark.parametrize("norm", [n for n in RNN_NORMS.names() if n != "none"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_every_placement_passes_gradcheck_and_round_trips(cell, norm):
    torch.manual_seed(1)
    rnn = NormRNN(cell, 2, 4, num_layers=2, norm=norm, max_steps=5).double()
    x = torch.randn(6, 5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: rnn(v)[0], (x,))
    rnn(x)
    clone = NormRNN(cell, 2, 4, num_layers=2, norm=norm, max_steps=5).double()
    clone.load_state_dict(rnn.state_dict())
    rnn.eval(), clone.eval()
    torch.testing.assert_close(clone(x)[0], rnn(x)[0])


def test_per_time_step_batch_norm_keeps_separate_statistics_per_step():
    torch.manual_seed(2)
    layer = RecurrentLayer("rnn", 1, 3, norm="batch_step", max_steps=4)
    x = torch.randn(32, 4, 1) * torch.tensor([1.0, 5.0, 10.0, 20.0]).view(1, 4, 1)  # each step its own scale
    layer(x)
    means = torch.stack([n.running_mean for n in layer.input_norm_t.norms])  # (steps, features)
    variances = torch.stack([n.running_var for n in layer.input_norm_t.norms])
    assert len({tuple(m.tolist()) for m in means}) == 4
    assert (variances[1:].mean(1) > variances[:-1].mean(1)).all()  # larger inputs, larger variance per step
    torch.testing.assert_close(layer.input_norm_t.norms[0].weight, torch.full((3,), 0.1))  # gamma starts small
    y, _ = layer(torch.randn(8, 7, 1))  # steps past max_steps reuse the last statistics
    assert y.shape == (8, 7, 3)


def test_batch_between_normalises_only_between_layers():
    one = NormRNN("gru", 2, 4, num_layers=1, norm="batch_between")
    three = NormRNN("gru", 2, 4, num_layers=3, norm="batch_between")
    assert one.between is not None and len(one.between) == 0 and len(three.between) == 2


def test_layer_norm_rnn_normalises_each_sample():
    torch.manual_seed(3)
    layer = RecurrentLayer("rnn", 2, 8, norm="layer")
    captured = []
    layer.sum_norms[0].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    layer(torch.randn(3, 4, 2))
    for out in captured:  # gamma 1 and beta 0: zero mean, unit variance per sample and step
        torch.testing.assert_close(out.mean(1), torch.zeros(3), atol=1e-5, rtol=0)


def test_bad_choices_say_what_is_allowed():
    with pytest.raises(ValueError, match="cell must be one of rnn, gru, lstm"):
        RecurrentLayer("elman", 1, 2)
    with pytest.raises(ValueError, match="norm must be one of"):
        RecurrentLayer("gru", 1, 2, norm="batch_between")
