"""``numeric``: Kong et al.'s numerical-gradient threshold tuning (002's numThresh baseline).

The gradient of F1 with respect to threshold k is a forward finite difference: the threshold is raised by ``delta``
(0.01) until F1 changes or ``max_steps`` (10) increments were tried, and the change is divided by the distance moved.
The thresholds then take an Adam step on -F1, ``epochs`` times. Only class k's counts change when threshold k moves,
so each difference is one binary search in class k's sorted scores.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from jasc_thresholds.base import F1Optimizer, MetricConfig
from jasc_thresholds.metrics import SortedCounts, f1_from_counts


class NumericGradient(F1Optimizer):
    """Adam on finite-difference F1 gradients (Kong et al.; 002's numThresh)."""

    name = "numeric"

    class Config(MetricConfig):
        init: float = Field(0.5, description="initial threshold of every class")
        delta: float = Field(0.01, gt=0, description="finite-difference step of a threshold")
        max_steps: int = Field(10, ge=1, description="steps of delta tried until F1 changes")
        lr: float = Field(1e-2, gt=0, description="Adam learning rate")
        epochs: int = Field(100, ge=1, description="gradient steps")

    def _fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        config = self.config
        classes = scores.shape[1]
        thresholds = np.full(classes, config.init)
        table = SortedCounts(scores, targets)
        positives, class_counts = table.positives, table.class_counts

        # Adam as in Kong's optimiser: bias correction folded into the step size, epsilon under the square root.
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        m = np.zeros(classes)
        v = np.zeros(classes)
        for step in range(1, config.epochs + 1):
            counts = [class_counts(k, thresholds[k]) for k in range(classes)]
            tp = np.array([c[0] for c in counts])
            fp = np.array([c[1] for c in counts])
            f1 = f1_from_counts(tp, fp, positives - tp, config.metric)
            grads = np.zeros(classes)
            for k in range(classes):
                moved_tp, moved_fp = tp.copy(), fp.copy()
                for tries in range(1, config.max_steps + 1):
                    moved_tp[k], moved_fp[k] = class_counts(k, thresholds[k] + tries * config.delta)
                    moved_f1 = f1_from_counts(moved_tp, moved_fp, positives - moved_tp, config.metric)
                    if moved_f1 != f1:
                        break
                grads[k] = -(moved_f1 - f1) / (tries * config.delta)  # gradient of the loss -F1
            m = beta1 * m + (1 - beta1) * grads
            v = beta2 * v + (1 - beta2) * grads**2
            alpha = config.lr * np.sqrt(1 - beta2**step) / (1 - beta1**step)
            thresholds = thresholds - alpha * m / np.sqrt(v + eps)
        return thresholds
