"""A run's tuned per-class event thresholds (``thresholds.json``): written by ``jasc thresholds tune``, read by every
later evaluation and prediction of the run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jasc_core.contract.json_types import JSONValue
from jasc_core.errors import RunError
from jasc_core.runs.folder import open_run, read_json, write_json


def stored_thresholds(run_dir: str | Path, labels: Sequence[str]) -> np.ndarray | None:
    """Tuned per-class thresholds of a run, or None; they must be for the run's event labels."""
    run = open_run(run_dir)
    if not run.thresholds.is_file():
        return None
    data = read_json(run.thresholds)
    if list(data.get("labels", [])) != list(labels):
        raise RunError(f"{run.thresholds} was tuned for labels {data.get('labels')}, the model has {list(labels)}")
    return np.asarray(data["thresholds"], dtype=float)


def save_thresholds(run_dir: str | Path, thresholds: np.ndarray, labels: Sequence[str], **info: JSONValue) -> Path:
    """Store tuned per-class event thresholds in the run folder (``thresholds.json``); evaluation then uses them."""
    run = open_run(run_dir)
    values = np.asarray(thresholds, dtype=float).reshape(-1)
    if len(values) != len(labels):
        raise RunError(f"{len(values)} thresholds for {len(labels)} event classes")
    write_json(run.thresholds, {"labels": list(labels), "thresholds": values.tolist(), **info})
    return run.thresholds
