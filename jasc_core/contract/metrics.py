"""Metrics as the papers define them (docs/evaluation.md, "Metrics").

Scene classification: micro-F = accuracy (single-label), macro-F = mean per-class F1 over every class of the label
list; confusion matrix rows are the reference, columns the prediction.

Event detection, frame level (001's Table IV): with binary decisions ``score > threshold`` per frame and class,
micro-F = 2TP / (2TP + FP + FN) summed over all frames and classes; macro-F = mean over classes of the per-class F,
where a class with no reference frames in the test set counts 0 (its F is 0 whatever it predicts). Any F whose
denominator is 0 is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jasc_core.contract.json_types import JSONObject


def f_score(tp: float, fp: float, fn: float) -> float:
    """F1 = 2TP / (2TP + FP + FN); 0 when the denominator is 0."""
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator > 0 else 0.0


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[reference, predicted]``."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(reference, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def scene_metrics(reference: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> JSONObject:
    """Accuracy (= micro-F), macro-F, per-class F1 and the confusion matrix of single-label predictions."""
    matrix = confusion_matrix(reference, predicted, len(labels))
    tp = np.diag(matrix).astype(float)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    per_class = {label: f_score(tp[i], fp[i], fn[i]) for i, label in enumerate(labels)}
    total = matrix.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(np.mean(list(per_class.values()))) if per_class else 0.0,
        "per_class_f1": per_class,
        "confusion": matrix.tolist(),
        "n_clips": int(total),
    }


def frame_counts(scores: np.ndarray, targets: np.ndarray, threshold: float | np.ndarray) -> dict[str, np.ndarray]:
    """Per-class TP, FP, FN of frame decisions ``scores > threshold``; inputs ``[..., classes]``."""
    scores = np.asarray(scores).reshape(-1, np.shape(scores)[-1])
    targets = np.asarray(targets).reshape(-1, np.shape(targets)[-1]) > 0.5
    decisions = scores > np.asarray(threshold)
    return {
        "tp": (decisions & targets).sum(axis=0),
        "fp": (decisions & ~targets).sum(axis=0),
        "fn": (~decisions & targets).sum(axis=0),
    }


def event_frame_metrics(
    scores: np.ndarray, targets: np.ndarray, labels: Sequence[str], threshold: float | np.ndarray = 0.5
) -> JSONObject:
    """Frame-level micro-F and macro-F (001's definition) and per-class F of event scores ``[..., classes]``."""
    counts = frame_counts(scores, targets, threshold)
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    per_class = {}
    for i, label in enumerate(labels):
        # A class absent from the reference counts 0 in the macro average, even with no false alarms.
        per_class[label] = f_score(tp[i], fp[i], fn[i]) if tp[i] + fn[i] > 0 else 0.0
    return {
        "frame_micro_f1": f_score(tp.sum(), fp.sum(), fn.sum()),
        "frame_macro_f1": float(np.mean(list(per_class.values()))) if per_class else 0.0,
        "frame_per_class_f1": per_class,
        "frame_counts": {key: [int(v) for v in value] for key, value in counts.items()},
    }
