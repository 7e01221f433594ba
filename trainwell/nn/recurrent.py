"""Recurrent layers with normalisation: the placements of seed 001.

With ``a_t = W_x x_t + b_x`` (the input term) and ``b_t = W_h h_{t-1} + b_h``
(the recurrent term), a plain RNN is ``h_t = phi(a_t + b_t)``. The
placements (``model.rnn_norm``):

================= ==============================================================
``none``          ``phi(a_t + b_t)``; matches ``torch.nn.RNN/GRU/LSTM``
``batch_sum``     ``phi(BN(a_t + b_t))``: one BN on the summed pre-activation
                  (the notes: poor, the two terms are not alike)
``batch_input``   ``phi(BN(a_t) + b_t)``: BN of the input term only, statistics
                  over batch and time (the notes: overfits easily)
``batch_step``    ``phi(BN_t(a_t) + BN_t(b_t))``: separate BN of both terms,
                  with statistics and gamma/beta per time step, gamma starting
                  small (0.1) (Cooijmans et al. 2017)
``batch_between`` plain cells, BN of each layer's output sequence before the
                  next stacked layer ("vertical" BN; needs depth >= 2)
``layer``         ``phi(LN(a_t + b_t))``: layer norm per sample and step, gamma
                  and beta shared over time (Ba et al. 2016)
================= ==============================================================

For LSTM ``phi`` is the gates (i, f, g, o) and ``c_t = f c + i g``,
``h_t = o tanh(c_t)``. For GRU the gates r and z read ``a + b`` and the
candidate reads ``a_n + r * b_n``; a norm of the sum is applied to both.
Parameters are named and laid out as in ``torch.nn.GRU``/``LSTM``
(``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, gates in torch's
order), so weights copy across.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainwell.nn.norms import BatchNorm1d
from trainwell.registry import Registry

__all__ = ["RNN_NORMS", "NormRNN", "RecurrentLayer"]

RNN_NORMS: Registry = Registry("recurrent norm placement")
for _name, _text in [
    ("none", "no normalisation (torch's fused RNN/GRU/LSTM)"),
    ("batch_sum", "BN of the summed pre-activation W_h h + W_x x"),
    ("batch_input", "BN of the input term W_x x only"),
    ("batch_step", "separate BN of both terms, statistics and gamma/beta per time step"),
    ("batch_between", "BN between stacked layers (vertical)"),
    ("layer", "layer norm of the summed pre-activation, per sample and step"),
]:
    RNN_NORMS.add(_name, _name, _text)

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


class _PerStep(nn.Module):
    """One batch norm per time step; steps past ``max_steps`` reuse the last one."""

    def __init__(self, features: int, max_steps: int, gamma: float) -> None:
        super().__init__()
        self.norms = nn.ModuleList(BatchNorm1d(features) for _ in range(max_steps))
        for norm in self.norms:
            nn.init.constant_(norm.weight, gamma)

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return self.norms[min(t, len(self.norms) - 1)](x)


class RecurrentLayer(nn.Module):
    """One recurrent layer (``rnn``, ``gru`` or ``lstm``) with a norm placement.

    Args:
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        input_size, hidden_size: feature sizes.
        norm: a placement of :data:`RNN_NORMS` other than ``batch_between``
            (which lives between layers, in :class:`NormRNN`).
        nonlinearity: ``"tanh"`` or ``"relu"`` (``rnn`` only).
        max_steps: time steps with their own statistics (``batch_step``).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, norm: str = "none",
                 nonlinearity: str = "tanh", max_steps: int = 64) -> None:
        super().__init__()
        if cell not in _GATES:
            raise ValueError(f"cell must be one of {', '.join(_GATES)}, got {cell!r}")
        if norm not in RNN_NORMS or norm == "batch_between":
            raise ValueError(f"a recurrent layer's norm must be one of none, batch_sum, batch_input, batch_step, "
                             f"layer, got {norm!r}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.cell, self.hidden_size, self.norm, self.nonlinearity = cell, hidden_size, norm, nonlinearity
        g = _GATES[cell] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(g))
        self.bias_hh = nn.Parameter(torch.empty(g))
        # A norm of the sum sees the gates' sum and, for GRU, the candidate's separately.
        sums = [2 * hidden_size, hidden_size] if cell == "gru" else [g]
        if norm == "batch_sum":
            self.sum_norms = nn.ModuleList(BatchNorm1d(n) for n in sums)
        elif norm == "layer":
            self.sum_norms = nn.ModuleList(nn.LayerNorm(n) for n in sums)
        elif norm == "batch_input":
            self.input_norm = BatchNorm1d(g)
        elif norm == "batch_step":
            self.input_norm_t = _PerStep(g, max_steps, gamma=0.1)
            self.hidden_norm_t = _PerStep(g, max_steps, gamma=0.1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's recurrent default: every weight and bias from U[-1/sqrt(hidden), 1/sqrt(hidden)]."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Run over ``x`` ``(batch, time, input)``; return outputs ``(batch, time, hidden)`` and the last state
        (``(h,)``, or ``(h, c)`` for LSTM, each ``(batch, hidden)``)."""
        batch, steps, _ = x.shape
        H = self.hidden_size
        a_all = x @ self.weight_ih.T + self.bias_ih  # (batch, time, gates * hidden)
        if self.norm == "batch_input":  # statistics over batch and time
            a_all = self.input_norm(a_all.reshape(batch * steps, -1)).view(batch, steps, -1)
        if state is None:
            zeros = x.new_zeros(batch, H)
            state = (zeros, zeros) if self.cell == "lstm" else (zeros,)
        h = state[0]
        c = state[1] if self.cell == "lstm" else None
        outputs = []
        for t in range(steps):
            a, b = a_all[:, t], h @ self.weight_hh.T + self.bias_hh  # (batch, gates * hidden)
            if self.norm == "batch_step":
                a, b = self.input_norm_t(a, t), self.hidden_norm_t(b, t)
            if self.cell == "gru":
                rz = a[:, :2 * H] + b[:, :2 * H]
                if self.norm in ("batch_sum", "layer"):
                    rz = self.sum_norms[0](rz)
                r, z = torch.sigmoid(rz).chunk(2, dim=1)
                n_pre = a[:, 2 * H:] + r * b[:, 2 * H:]
                if self.norm in ("batch_sum", "layer"):
                    n_pre = self.sum_norms[1](n_pre)
                h = (1 - z) * torch.tanh(n_pre) + z * h
            else:
                pre = a + b
                if self.norm in ("batch_sum", "layer"):
                    pre = self.sum_norms[0](pre)
                if self.cell == "rnn":
                    h = torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)
                else:
                    i, f, g, o = pre.chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        last = (h, c) if self.cell == "lstm" else (h,)
        return torch.stack(outputs, dim=1), last

    def extra_repr(self) -> str:
        return (f"{self.cell}, {self.weight_ih.shape[1]}, {self.hidden_size}, norm={self.norm}"
                + (f", nonlinearity={self.nonlinearity}" if self.cell == "rnn" else ""))


class NormRNN(nn.Module):
    """Stacked :class:`RecurrentLayer` s, batch first, like ``torch.nn.GRU(batch_first=True)``.

    Args:
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        input_size, hidden_size, num_layers: as in torch.
        norm: a placement of :data:`RNN_NORMS`.
        nonlinearity: ``"tanh"`` or ``"relu"`` (``rnn`` only).
        dropout: dropout on the outputs of every layer but the last (training only).
        max_steps: time steps with their own statistics (``batch_step``).

    Example:
        >>> rnn = NormRNN("lstm", 1, 16, num_layers=2, norm="batch_step", max_steps=40)
        >>> out, (h, c) = rnn(torch.randn(8, 40, 1))
        >>> out.shape
        torch.Size([8, 40, 16])
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, norm: str = "none",
                 nonlinearity: str = "tanh", dropout: float = 0.0, max_steps: int = 64) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layer_norm = "none" if norm == "batch_between" else norm
        self.layers = nn.ModuleList(
            RecurrentLayer(cell, input_size if i == 0 else hidden_size, hidden_size, layer_norm, nonlinearity,
                           max_steps) for i in range(num_layers))
        self.between = nn.ModuleList(BatchNorm1d(hidden_size) for _ in range(num_layers - 1)) \
            if norm == "batch_between" else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``x`` ``(batch, time, input)`` -> outputs of the last layer ``(batch, time, hidden)`` and the last
        states stacked per layer (``(layers, batch, hidden)`` each), as torch returns them."""
        finals = []
        for i, layer in enumerate(self.layers):
            x, last = layer(x)
            finals.append(last)
            if i < len(self.layers) - 1:
                if self.between is not None:
                    batch, steps, hidden = x.shape
                    x = self.between[i](x.reshape(batch * steps, hidden)).view(batch, steps, hidden)
                x = self.dropout(x)
        return x, tuple(torch.stack(s) for s in zip(*finals))
