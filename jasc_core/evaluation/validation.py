"""The metrics of one pass over a split, per task and flat (``val/...``), and which of them can select a model.

``val/score`` is the mean, over the model's tasks, of each task's first validation metric (scene accuracy, event
frame-level micro-F at the evaluation threshold). Also selectable: ``val/loss`` (sum of the unweighted task losses;
use ``select_mode: min``), ``val/loss/<task>`` and ``val/<task>/<metric>`` for each task's validation metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jasc_core.contract.json_types import JSONMapping, JSONObject
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.inference.scoring import SplitScores


def task_metrics(scores: SplitScores, labels: Mapping[str, Sequence[str]], threshold: Mapping[str, np.ndarray | float] | np.ndarray | float) -> JSONObject:
    """Each task's metrics over its labelled clips (a task with no labelled clip is left out)."""
    metrics: JSONObject = {}
    for task, probs in scores.probs.items():
        labelled = scores.labelled[task]
        if labelled.any():
            metrics[task] = TASK_DESCRIPTIONS[task].metrics(
                probs[labelled], scores.targets[task][labelled], labels[task], threshold
            )
    return metrics


def validation_summary(metrics: JSONMapping, losses: Mapping[str, float]) -> dict[str, float]:
    """Flat ``val/...`` numbers of one validation pass (see the module docstring)."""
    flat: dict[str, float] = {}
    parts = []
    for task, values in metrics.items():
        names = TASK_DESCRIPTIONS[task].validation_metrics
        for name in names:
            flat[f"val/{task}/{name}"] = values[name]
        parts.append(values[names[0]])
    for task, value in losses.items():
        flat[f"val/loss/{task}"] = value
    if losses:
        flat["val/loss"] = float(sum(losses.values()))
    flat["val/score"] = float(np.mean(parts)) if parts else 0.0
    return flat


def selectable_metrics(tasks: Sequence[str]) -> list[str]:
    """Every metric ``train.select_metric`` can name for a model with heads for ``tasks``."""
    names = ["val/score", "val/loss", *(f"val/loss/{task}" for task in tasks)]
    for task in tasks:
        names += [f"val/{task}/{name}" for name in TASK_DESCRIPTIONS[task].validation_metrics]
    return names
