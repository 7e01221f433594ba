"""Layers of the notes: activations and normalisation, by name."""

from trainwell.nn.activations import ACTIVATIONS, make_activation
from trainwell.nn.norms import NORMS, ChannelLayerNorm, make_norm

__all__ = ["ACTIVATIONS", "NORMS", "ChannelLayerNorm", "make_activation", "make_norm"]
