"""The loop's side of data augmentation: every training batch changed at ``batch_start``.

The changes themselves are :func:`trainwell.data.augment.augment_batch`'s.
"""

from __future__ import annotations

from typing import Any

import torch

from trainwell.data.augment import augment_batch, check_augmentation
from trainwell.loop.callbacks import Callback

__all__ = ["Augment"]


class Augment(Callback):
    """Augments every training batch at ``batch_start`` (seeded; its state is checkpointed).

    Raises:
        ValueError: a change that does not fit data of ``kind``.
    """

    def __init__(self, kind: str, seed: int = 0, scale: torch.Tensor | None = None, **changes: Any) -> None:
        check_augmentation(kind, **{k: v for k, v in changes.items() if k != "noise"})
        self.kind, self.changes = kind, changes
        self.scale = scale  # per-feature std: noise is in units of each feature's spread
        self.generator = torch.Generator().manual_seed(seed)

    def on_batch_start(self, trainer) -> None:
        xb = trainer.xb
        trainer.xb = augment_batch(xb, self.kind, self.generator, scale=self.scale, **self.changes).to(xb.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
