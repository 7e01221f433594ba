"""One-class learning (spec J): learn what one class looks like, flag everything else.

When the rare class is too rare to learn from (or unknown), train on the
common class only: an autoencoder learns to reconstruct its rows, and a row
it reconstructs badly is flagged. The threshold is the ``quantile`` of the
training rows' reconstruction errors, so about ``1 - quantile`` of normal
rows are flagged by design. The interface is scikit-learn's outlier
detectors': ``fit(X)``, ``score_samples`` (higher is more normal),
``predict`` (+1 normal, -1 outlier).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["OneClassAutoencoder"]


class OneClassAutoencoder:
    """An MLP autoencoder fitted to one class; outliers are rows it reconstructs badly.

    Args:
        bottleneck: units in the middle layer (smaller than the features).
        width: units of the hidden layers around it.
        epochs, lr, batch_size: training (Adam, mean squared error).
        quantile: share of training rows under the threshold.
        random_state: seed of initialisation and shuffling.
    """

    def __init__(self, *, bottleneck: int = 2, width: int = 32, epochs: int = 200, lr: float = 1e-2,
                 batch_size: int = 128, quantile: float = 0.95, random_state: int | None = 0) -> None:
        self.bottleneck, self.width, self.epochs, self.lr = bottleneck, width, epochs, lr
        self.batch_size, self.quantile, self.random_state = batch_size, quantile, random_state

    def _errors(self, X: Any) -> np.ndarray:
        x = (torch.as_tensor(np.asarray(X), dtype=torch.float32) - self.mean_) / self.std_
        with torch.no_grad():
            return ((self.net_(x) - x) ** 2).mean(1).numpy()

    def fit(self, X: Any, y: Any = None) -> OneClassAutoencoder:
        """Learn the rows ``X`` ``(rows, features)`` of the one class (``y`` is ignored)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) < 2 or not np.isfinite(X).all():
            raise ValueError(f"X must be finite rows of features (rows >= 2), got shape {X.shape}")
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must lie in (0, 1), got {self.quantile}")
        g = torch.Generator().manual_seed(self.random_state or 0)
        torch_state = torch.random.get_rng_state()
        torch.manual_seed(self.random_state or 0)
        try:
            x = torch.as_tensor(X)
            self.mean_, self.std_ = x.mean(0), x.std(0).clamp_min(1e-8)
            x = (x - self.mean_) / self.std_
            d = x.shape[1]
            self.net_ = nn.Sequential(nn.Linear(d, self.width), nn.ReLU(), nn.Linear(self.width, self.bottleneck),
                                      nn.ReLU(), nn.Linear(self.bottleneck, self.width), nn.ReLU(),
                                      nn.Linear(self.width, d))
            opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
            for _ in range(self.epochs):
                order = torch.randperm(len(x), generator=g)
                for i in range(0, len(x), self.batch_size):
                    xb = x[order[i:i + self.batch_size]]
                    loss = ((self.net_(xb) - xb) ** 2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        finally:
            torch.random.set_rng_state(torch_state)
        self.net_.eval()
        self.threshold_ = float(np.quantile(self._errors(X), self.quantile))
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus the reconstruction error: higher is more like the training class."""
        return -self._errors(X)

    def predict(self, X: Any) -> np.ndarray:
        """+1 for rows like the training class, -1 for outliers (error above the threshold)."""
        return np.where(self._errors(X) <= self.threshold_, 1, -1)
