"""Accuracy per recording device (``Clip.device``), as DCASE Task 1 reports it beside the overall accuracy.

For every clip-level class task (one label per clip: the scene) and every device that labelled clips of the split
name: the share of that device's labelled clips whose highest-probability class is the true one. Clips without a
device are left out; a split without devices gets no entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from jasc_core.contract.data import Clip
from jasc_core.contract.json_types import JSONMapping, JSONObject
from jasc_core.contract.tasks import TASK_DESCRIPTIONS


def per_device_accuracy(
    clip_ids: list[str], probs: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray],
    labelled: Mapping[str, np.ndarray], clips: Iterable[Clip],
) -> dict[str, dict[str, JSONObject]]:
    """``{task: {device: {"accuracy": float, "n_clips": int}}}`` (devices sorted), for clip-level class tasks."""
    device_of = {clip.clip_id: clip.device for clip in clips}
    devices = np.asarray([device_of.get(clip_id) for clip_id in clip_ids], dtype=object)
    result: dict[str, dict[str, JSONObject]] = {}
    for task, task_probs in probs.items():
        if TASK_DESCRIPTIONS[task].frame_level or task_probs.ndim != 2 or targets[task].ndim != 1:
            continue
        correct = task_probs.argmax(axis=-1) == targets[task]
        rows: dict[str, JSONObject] = {}
        for device in sorted({d for d in devices if d is not None}):
            chosen = (devices == device) & labelled[task]
            if chosen.any():
                rows[device] = {"accuracy": float(correct[chosen].mean()), "n_clips": int(chosen.sum())}
        if rows:
            result[task] = rows
    return result


def device_table_lines(metrics: JSONMapping) -> list[str]:
    """Markdown lines of the per-device accuracy table (one per task that has ``per_device``), else []."""
    lines: list[str] = []
    for task, values in metrics.items():
        per_device = values.get("per_device") if isinstance(values, Mapping) else None
        if not per_device:
            continue
        devices = list(per_device)
        lines += ["", f"## {task.capitalize()} accuracy per recording device", "",
                  "| " + " | ".join(devices) + " |", "|---" * len(devices) + "|",
                  "| " + " | ".join(f"{100 * per_device[d]['accuracy']:.2f}% ({per_device[d]['n_clips']})"
                                    for d in devices) + " |"]
    return lines
