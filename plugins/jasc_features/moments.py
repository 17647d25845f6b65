"""Streaming per-feature mean and variance in float64, merged batch by batch (Chan et al.'s parallel update)."""

from __future__ import annotations

import torch
from torch import Tensor


class RunningMoments:
    """Mean and variance of each column of every ``[rows, features]`` tensor passed to ``update``.

    Each batch's own mean and sum of squared deviations are merged into the running ones, which stays exact in
    float64 for any number of rows (no catastrophic cancellation as with a plain sum of squares).
    """

    def __init__(self, n_features: int) -> None:
        self.count = 0
        self.mean = torch.zeros(n_features, dtype=torch.float64)
        self.sq_dev = torch.zeros(n_features, dtype=torch.float64)

    def update(self, rows: Tensor) -> None:
        rows = rows.detach().to(device="cpu", dtype=torch.float64)
        n = rows.shape[0]
        if n == 0:
            return
        batch_mean = rows.mean(dim=0)
        batch_sq_dev = ((rows - batch_mean) ** 2).sum(dim=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.sq_dev = self.sq_dev + batch_sq_dev + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def variance(self) -> Tensor:
        """Population variance (divides by the number of rows)."""
        return self.sq_dev / max(self.count, 1)
