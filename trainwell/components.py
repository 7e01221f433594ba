"""Every named choice of trainwell, in one place (``trainwell components``)."""

from __future__ import annotations

from trainwell.data.datasets import DATASETS
from trainwell.data.imbalance import SAMPLERS
from trainwell.init import INITS
from trainwell.losses import LOSSES
from trainwell.models import MODELS
from trainwell.nn.activations import ACTIVATIONS
from trainwell.nn.attention import ATTENTIONS
from trainwell.nn.dropout import DROPOUTS
from trainwell.nn.norms import NORMS
from trainwell.nn.recurrent import RNN_NORMS
from trainwell.optim.registry import OPTIMIZERS
from trainwell.registry import Registry

__all__ = ["REGISTRIES"]

REGISTRIES: dict[str, Registry] = {
    "dataset": DATASETS,
    "sampler": SAMPLERS,
    "model": MODELS,
    "activation": ACTIVATIONS,
    "norm": NORMS,
    "rnn_norm": RNN_NORMS,
    "dropout": DROPOUTS,
    "attention": ATTENTIONS,
    "init": INITS,
    "optimizer": OPTIMIZERS,
    "loss": LOSSES,
}
