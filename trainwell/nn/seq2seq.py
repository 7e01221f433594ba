"""Sequence to sequence: an encoder-decoder RNN with optional attention.

The encoder (GRU or LSTM) reads the source tokens; its last state starts the
decoder. At each output step the decoder reads the previous output token (in
training, the true one: teacher forcing) and, with attention, a context: the
mean of the encoder states weighted by how well each matches the decoder's
previous state (see :mod:`trainwell.nn.attention`). Without attention the
whole source must pass through one state vector, which is why long
sequences fail without it.
"""

from __future__ import annotations

import torch
from torch import nn

from trainwell.nn.attention import ATTENTIONS

__all__ = ["Seq2Seq"]


class Seq2Seq(nn.Module):
    """Encoder-decoder over token sequences.

    Args:
        input_vocab: source token count.
        output_vocab: target token count (the logits' classes).
        target_length: output steps when decoding without targets.
        hidden: state size of encoder and decoder.
        embedding: token embedding size.
        cell: ``"gru"`` or ``"lstm"``.
        attention: ``"none"``, ``"additive"``, ``"dot"`` or ``"general"``.

    Example:
        >>> model = Seq2Seq(10, 10, target_length=5, attention="additive")
        >>> logits, weights = model(torch.randint(0, 10, (4, 5)), return_attention=True)
        >>> logits.shape, weights.shape  # (batch, vocab, target), (batch, target, source)
        (torch.Size([4, 10, 5]), torch.Size([4, 5, 5]))
    """

    def __init__(self, input_vocab: int, output_vocab: int, target_length: int, hidden: int = 64,
                 embedding: int = 32, cell: str = "gru", attention: str = "none") -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"seq2seq cell must be 'gru' or 'lstm', got {cell!r}")
        self.cell, self.target_length, self.output_vocab = cell, target_length, output_vocab
        self.source_embedding = nn.Embedding(input_vocab, embedding)
        self.encoder = (nn.GRU if cell == "gru" else nn.LSTM)(embedding, hidden, batch_first=True)
        self.target_embedding = nn.Embedding(output_vocab + 1, embedding)  # the last token is <start>
        factory = ATTENTIONS.get(attention)
        self.attention = None if factory is None else factory(hidden, hidden)
        context = 0 if self.attention is None else hidden
        self.decoder = (nn.GRUCell if cell == "gru" else nn.LSTMCell)(embedding + context, hidden)
        self.out = nn.Linear(hidden + context, output_vocab)

    def forward(self, source: torch.Tensor, target: torch.Tensor | None = None, return_attention: bool = False):
        """Decode ``source`` ``(batch, source)`` into logits ``(batch, output_vocab, target)``.

        With ``target`` ``(batch, target)`` the decoder is teacher-forced (it
        reads the true previous token); without, it reads its own greedy
        prediction for ``target_length`` steps. The logits' layout is the one
        ``F.cross_entropy`` takes with targets ``(batch, target)``.
        With ``return_attention`` also returns the weights ``(batch, target, source)``
        (None without attention).
        """
        states, last = self.encoder(self.source_embedding(source))  # (batch, source, hidden)
        state = tuple(s[0] for s in last) if self.cell == "lstm" else last[0]
        steps = self.target_length if target is None else target.shape[1]
        token = torch.full((source.shape[0],), self.output_vocab, dtype=torch.long, device=source.device)
        logits, weights = [], []
        for t in range(steps):
            h = state[0] if self.cell == "lstm" else state
            inputs = self.target_embedding(token)  # (batch, embedding)
            if self.attention is not None:
                context, w = self.attention(h, states)  # (batch, hidden), (batch, source)
                inputs = torch.cat([inputs, context], dim=1)
                weights.append(w)
            state = self.decoder(inputs, state)
            h = state[0] if self.cell == "lstm" else state
            step_logits = self.out(h if self.attention is None else torch.cat([h, context], dim=1))
            logits.append(step_logits)  # (batch, vocab)
            token = step_logits.argmax(1) if target is None else target[:, t]
        out = torch.stack(logits, dim=2)  # (batch, vocab, target)
        if return_attention:
            return out, torch.stack(weights, dim=1) if weights else None
        return out
