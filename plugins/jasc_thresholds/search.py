"""``search``: 002's heuristic baseline, a random perturbation search of the thresholds (dichoThresh in its table).

002's code (heuThresh) restarts from the initial thresholds ``restarts`` times; each restart draws ``iterations``
joint perturbations of all thresholds with a step that shrinks as the restart goes on, and keeps a proposal when it
raises the F1 being optimised. The best thresholds seen over all restarts are returned. Two quirks of the original
are not kept: its perturbation had a mean proportional to the threshold itself, and its step went negative halfway.
Here a proposal is ``current + step_t * std * N(0, 1)`` with ``step_t`` decreasing linearly from ``step`` to 0.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from jasc_thresholds.base import F1Optimizer, MetricConfig
from jasc_thresholds.metrics import SortedCounts


class PerturbationSearch(F1Optimizer):
    """Random perturbation search from an initial threshold (002's heuristic baseline)."""

    name = "search"

    class Config(MetricConfig):
        init: float = Field(0.5, description="initial threshold of every class")
        restarts: int = Field(80, ge=1, description="restarts from the initial thresholds (002: 80)")
        iterations: int = Field(400, ge=1, description="perturbations tried per restart (002: 400)")
        std: float = Field(0.6, gt=0, description="standard deviation of a perturbation before scaling (002: 0.6)")
        step: float = Field(0.2, gt=0, description="initial scale of a perturbation, decays linearly to 0 (002: 0.2)")
        seed: int = Field(0, description="random seed of the perturbations")

    def _fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        config = self.config
        rng = np.random.default_rng(config.seed)
        classes = scores.shape[1]
        init = np.full(classes, config.init)

        table = SortedCounts(scores, targets)

        def score_of(thresholds: np.ndarray) -> float:
            return table.f1(thresholds, config.metric)

        best, best_f1 = init.copy(), score_of(init)
        steps = config.step * (1.0 - np.arange(config.iterations) / config.iterations)
        for _ in range(config.restarts):
            current, current_f1 = init.copy(), score_of(init)
            noise = rng.standard_normal((config.iterations, classes)) * config.std
            for step, z in zip(steps, noise, strict=True):
                proposal = current + step * z
                proposal_f1 = score_of(proposal)
                if proposal_f1 > current_f1:
                    current, current_f1 = proposal, proposal_f1
            if current_f1 > best_f1:
                best, best_f1 = current, current_f1
        return best
