"""Tuning as a library call: build an optimiser by name and tune.

``jasc thresholds bench`` and a run-folder command are thin wrappers around these functions::

    thresholds = tune(as_rows(val_frame_scores), as_rows(val_frame_targets), method="sgl", metric="micro")
    jasc_core.api.save_thresholds(run_dir, thresholds, labels, method="sgl", metric="micro")
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jasc_core import ThresholdOptimizer, component
from jasc_thresholds.metrics import Metric

#: Config fields that hold a method's starting (or only) threshold, in the order they are looked for.
INIT_FIELDS: tuple[str, ...] = ("value", "theta_init", "init")


def init_field(cls: type[ThresholdOptimizer]) -> str | None:
    """The config field of ``cls`` that holds its initial threshold (``None`` if it has none)."""
    fields = getattr(cls.Config, "model_fields", {})
    return next((name for name in INIT_FIELDS if name in fields), None)


def build_optimizer(
    method: str, metric: Metric | None = None, init: float | None = None, options: Mapping[str, Any] | None = None
) -> ThresholdOptimizer:
    """An optimiser from its registry name; ``metric`` and ``init`` fill the matching config fields when it has them."""
    cls = component("thresholds", method)
    block = dict(options or {})
    fields = getattr(cls.Config, "model_fields", {})
    if metric is not None and "metric" in fields:
        block.setdefault("metric", metric)
    field = init_field(cls)
    if init is not None and field is not None:
        block.setdefault(field, init)
    return cls(block)


def tune(
    scores: np.ndarray,
    targets: np.ndarray,
    method: str = "sgl",
    metric: Metric | None = None,
    init: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Per-class thresholds ``[classes]`` tuned on ``scores``/``targets`` ``[n, classes]`` by the named method."""
    return build_optimizer(method, metric, init, options).fit(scores, targets)


def timed_fit(optimizer: ThresholdOptimizer, scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
    """``optimizer.fit`` and its wall-clock time in seconds."""
    start = time.perf_counter()
    thresholds = optimizer.fit(scores, targets)
    return np.asarray(thresholds, dtype=np.float64), time.perf_counter() - start
