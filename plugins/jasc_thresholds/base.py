"""What every threshold optimiser of this plugin shares: the metric it maximises and input checking."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from jasc_core import ThresholdOptimizer
from jasc_thresholds.metrics import check_pair


class MetricConfig(BaseModel):
    metric: Literal["micro", "macro"] = Field("micro", description="F1 to maximise on the tuning data: micro or macro")


class F1Optimizer(ThresholdOptimizer):
    """Base of the plugin's optimisers: ``fit`` checks its inputs and delegates to ``_fit`` (float64 scores, bool targets)."""

    Config = MetricConfig

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Per-class thresholds ``[classes]`` (float64) for the decisions ``scores > thresholds``."""
        scores, targets = check_pair(scores, targets)
        thresholds = np.asarray(self._fit(scores, targets), dtype=np.float64)
        if thresholds.shape != (scores.shape[1],):  # pragma: no cover - a bug in a subclass, not a user error
            raise RuntimeError(f"{self.name} returned thresholds of shape {thresholds.shape}")
        return thresholds

    def _fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
