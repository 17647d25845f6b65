"""``cv_select``: choose among threshold optimisers by cross-validated F1 on the tuning data itself.

Which optimiser generalises best depends on the data: an exact search finds the best thresholds of the tuning set
and wins where that set resembles the test set; a local method such as SGL-Thresh stays near its start and wins
where the exact optimum is a fluke of the tuning set. ``cv_select`` splits the tuning rows into ``folds`` parts
(``repeats`` times, shuffled), tunes every candidate on all parts but one and pools the held-out TP/FP/FN; the
candidate with the best held-out F1 is then tuned on all rows. Only the tuning data is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from jasc_core import ThresholdOptimizer
from jasc_core.errors import ConfigError
from jasc_thresholds.base import F1Optimizer, MetricConfig
from jasc_thresholds.metrics import confusion_counts, f1_from_counts
from jasc_thresholds.tuning import build_optimizer

DEFAULT_CANDIDATES: list[dict[str, Any]] = [{"name": "sgl"}, {"name": "coordinate"}]


class CrossValidatedSelection(F1Optimizer):
    """Picks the optimiser with the best cross-validated F1 on the tuning data, then tunes it on all of it."""

    name = "cv_select"

    class Config(MetricConfig):
        init: float = Field(0.5, description="initial threshold given to candidates that do not set their own")
        candidates: list[dict[str, Any]] = Field(
            default_factory=lambda: [dict(block) for block in DEFAULT_CANDIDATES],
            min_length=1,
            description="thresholds blocks to choose from (name plus config fields)",
        )
        folds: int = Field(5, ge=2, description="cross-validation folds")
        repeats: int = Field(3, ge=1, description="shuffled repetitions of the cross-validation")
        seed: int = Field(0, description="seed of the fold shuffles")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.chosen: dict[str, Any] | None = None  # the winning block after fit
        self.cv_f1: list[float] = []  # held-out F1 of each candidate after fit
        self._candidates = [self._build(block) for block in self.config.candidates]

    def _build(self, block: dict[str, Any]) -> ThresholdOptimizer:
        if "name" not in block:
            raise ConfigError(f"thresholds.candidates: every candidate needs a 'name', got {block}")
        if block["name"] == self.name:
            raise ConfigError("thresholds.candidates: cv_select cannot choose among cv_select")
        options = {key: value for key, value in block.items() if key != "name"}
        return build_optimizer(block["name"], self.config.metric, self.config.init, options)

    def _fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        config = self.config
        n, classes = scores.shape
        if n < config.folds:
            raise ValueError(f"cv_select needs at least {config.folds} rows (one per fold), got {n}")
        rng = np.random.default_rng(config.seed)
        held_out = np.zeros((len(self._candidates), 3, classes), dtype=np.int64)
        for _ in range(config.repeats):
            order = rng.permutation(n)
            for fold in np.array_split(order, config.folds):
                train = np.setdiff1d(order, fold, assume_unique=True)
                for i, candidate in enumerate(self._candidates):
                    thresholds = candidate.fit(scores[train], targets[train])
                    held_out[i] += np.array(confusion_counts(scores[fold] > thresholds, targets[fold]))
        self.cv_f1 = [f1_from_counts(*counts, metric=config.metric) for counts in held_out]
        best = int(np.argmax(self.cv_f1))  # ties: the earlier candidate
        self.chosen = dict(config.candidates[best])
        return self._candidates[best].fit(scores, targets)
