"""``fixed``: one threshold for every class (002's defThresh baseline)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from jasc_thresholds.base import F1Optimizer, MetricConfig


class FixedThreshold(F1Optimizer):
    """One fixed threshold for every class (002's defThresh); ignores the tuning data."""

    name = "fixed"

    class Config(MetricConfig):
        value: float = Field(0.5, description="the threshold of every class (detection is score > value)")

    def _fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.full(scores.shape[1], self.config.value, dtype=np.float64)
