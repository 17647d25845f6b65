"""Per-class median filter lengths tuned on a validation split (the DCASE 2024 Task 4 baseline filters each class
with its own length).

Filtering class c changes only class c's detections, so each class's length is chosen alone: from ``GRID`` (seconds),
the one with the highest intersection-based F1 of that class (PSDS1's criteria: detection and ground-truth tolerance
0.7) at the run's decision threshold (its ``thresholds.json``, else ``evaluate.threshold``). A class without reference
events in the split keeps the recipe's length. The lengths go to the run's ``median_filters.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jasc_core.contract.tasks import frame_level_task
from jasc_core.errors import RunError
from jasc_core.evaluation.dcase import score_dataframes
from jasc_core.evaluation.events import filtered_scores, ground_truth
from jasc_core.evaluation.sed_scores import import_sed_scores_eval
from jasc_core.inference.scoring import score_split
from jasc_core.runs.median_filters import save_median_filters
from jasc_core.runs.thresholds import stored_thresholds

#: Candidate lengths in seconds (0: no filter).
GRID = (0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)


def class_intersection_f1(scores: dict[str, np.ndarray], truth: dict[str, list], labels: Sequence[str],
                          hop_seconds: float, durations: dict[str, float], thresholds: np.ndarray) -> dict[str, float]:
    """Per-class intersection-based F1 (dtc = gtc = 0.7) of the classes with reference events."""
    sse = import_sed_scores_eval()
    present = [c for c in labels if any(e[2] == c for events in truth.values() for e in events)]
    if not present:
        return {}
    columns = [list(labels).index(c) for c in present]
    frames = score_dataframes({c: np.asarray(s)[:, columns] for c, s in scores.items()}, present, hop_seconds,
                              durations)
    thr = {c: float(thresholds[i]) for c, i in zip(present, columns, strict=True)}
    f, *_ = sse.intersection_based.fscore(frames, truth, thr, dtc_threshold=0.7, gtc_threshold=0.7)
    return {c: float(f[c]) for c in present}


def tune_median_filters(run_dir: str | Path, split: str = "val", grid: Sequence[float] = GRID) -> dict[str, float]:
    """Choose and store each class's median filter length on ``split`` (see the module docstring)."""
    scores, (recipe, _, labels, clips) = score_split(run_dir, split)
    task = frame_level_task(scores.probs)
    truth = {c: events for c, events in ground_truth(clips).items() if c in set(scores.clip_ids)}
    if task is None or not truth:
        raise RunError(f"cannot tune median filters: the model has no event head or split '{split}' has no events")
    classes = labels[task]
    tuned = stored_thresholds(run_dir, classes)
    thresholds = np.broadcast_to(tuned if tuned is not None else float(recipe.evaluate.threshold), (len(classes),))
    durations = {clip.clip_id: clip.duration for clip in clips}
    base = recipe.evaluate.postprocess
    configured = base.median_filter
    lengths = {c: float(configured.get(c, 0.0) if isinstance(configured, dict) else configured) for c in classes}
    best = {c: -1.0 for c in classes}
    probs = {c: p for c, p in zip(scores.clip_ids, scores.probs[task], strict=True) if c in truth}
    for length in grid:
        post = base.model_copy(update={"median_filter": float(length)})
        smoothed = {c: filtered_scores(p, classes, scores.hop_seconds, post) for c, p in probs.items()}
        for c, value in class_intersection_f1(smoothed, truth, classes, scores.hop_seconds, durations,
                                              thresholds).items():
            if value > best[c]:
                best[c], lengths[c] = value, float(length)
    save_median_filters(run_dir, lengths, split=split, grid=list(grid),
                        criterion="per-class intersection F1 (dtc = gtc = 0.7) at the decision threshold",
                        f1={c: v for c, v in best.items() if v >= 0})
    return lengths
