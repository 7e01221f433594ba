import pytest
import torch
import torch.nn.functional as F

from trainwell.nn.attention import AdditiveAttention, DotAttention, GeneralAttention
from trainwell.nn.seq2seq import Seq2Seq


@pytest.mark.parametrize("attention", [AdditiveAttention(4, 4, 5), DotAttention(4, 4), GeneralAttention(4, 4)])
def test_attention_weights_sum_to_one_and_match_the_formula(attention):
    torch.manual_seed(0)
    attention = attention.double()
    q = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    context, weights = attention(q, k)
    torch.testing.assert_close(weights.sum(1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(context, (weights.unsqueeze(-1) * k).sum(1))
    if isinstance(attention, DotAttention):
        torch.testing.assert_close(weights, torch.softmax(torch.einsum("bh,bsh->bs", q, k), 1))
    elif isinstance(attention, GeneralAttention):
        w = attention.weight.weight  # (query, key)
        torch.testing.assert_close(weights, torch.softmax(torch.einsum("bq,qk,bsk->bs", q, w, k), 1))
    else:
        a = attention
        scores = (torch.tanh((q @ a.query.weight.T).unsqueeze(1) + k @ a.key.weight.T + a.key.bias)
                  @ a.v.weight.T).squeeze(-1)
        torch.testing.assert_close(weights, torch.softmax(scores, 1))
    assert torch.autograd.gradcheck(lambda q, k: attention(q, k)[0], (q, k))


def test_dot_attention_needs_equal_sizes():
    with pytest.raises(ValueError, match="use attention=general"):
        DotAttention(4, 5)


@pytest.mark.parametrize("attention", ["none", "additive", "dot", "general"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_seq2seq_shapes_teacher_forcing_and_attention_weights(cell, attention):
    torch.manual_seed(0)
    model = Seq2Seq(7, 5, target_length=4, hidden=8, embedding=6, cell=cell, attention=attention)
    x, y = torch.randint(0, 7, (3, 6)), torch.randint(0, 5, (3, 4))
    logits, weights = model(x, y, return_attention=True)
    assert logits.shape == (3, 5, 4)
    if attention == "none":
        assert weights is None
    else:
        assert weights.shape == (3, 4, 6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    F.cross_entropy(logits, y).backward()
    assert all(p.grad is not None for p in model.parameters())
    # teacher forcing: step t's output depends on y[:, :t] only, never on y[:, t:]
    y2 = y.clone()
    y2[:, 2:] = (y2[:, 2:] + 1) % 5
    torch.testing.assert_close(model(x, y2)[:, :, :3], logits[:, :, :3].detach())
    assert model(x).shape == (3, 5, 4)  # greedy decoding without targets


def test_seq2seq_gradcheck_in_float64():
    from torch.func import functional_call

    torch.manual_seed(1)
    model = Seq2Seq(4, 3, target_length=3, hidden=3, embedding=2, attention="additive").double()
    x, y = torch.randint(0, 4, (2, 3)), torch.randint(0, 3, (2, 3))
    names = ["out.weight", "attention.v.weight", "decoder.weight_hh", "encoder.weight_ih_l0"]
    params = dict(model.named_parameters())

    def outputs(*values):
        return functional_call(model, dict(zip(names, values)), (x, y))

    assert torch.autograd.gradcheck(outputs, tuple(params[n].detach().clone().requires_grad_() for n in names))
