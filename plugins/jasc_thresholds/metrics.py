"""F1 of binary decisions (micro or macro) and the array shapes threshold optimisers work on.

Detection is ``score > threshold`` everywhere, as in sed_scores_eval and in 002's code. F1 is ``2TP / (2TP + FP + FN)``,
taken as 0 where that denominator is 0 (a class never present and never predicted), like scikit-learn's
``zero_division=0``. Micro-F1 pools the counts of every class; macro-F1 is the mean of the per-class F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Metric = Literal["micro", "macro"]
METRICS: tuple[str, ...] = ("micro", "macro")


def as_rows(scores: np.ndarray | Sequence[np.ndarray], name: str = "scores") -> np.ndarray:
    """Flatten frame-level scores to rows ``[clips * frames, classes]`` (frame-level SED thresholding).

    Takes ``[clips, frames, classes]``, a list of ``[frames_i, classes]`` arrays (clips of different lengths) or an
    array that is already ``[rows, classes]`` (returned as is).
    """
    if isinstance(scores, np.ndarray):
        if scores.ndim == 2:
            return scores
        if scores.ndim == 3:
            return scores.reshape(-1, scores.shape[-1])
        raise ValueError(f"{name}: expected [rows, classes] or [clips, frames, classes], got shape {scores.shape}")
    parts = [np.asarray(part) for part in scores]
    if not parts:
        raise ValueError(f"{name}: no clips")
    if any(part.ndim != 2 or part.shape[1] != parts[0].shape[1] for part in parts):
        raise ValueError(f"{name}: every clip must be [frames, classes] with the same number of classes")
    return np.concatenate(parts, axis=0)


def check_pair(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``scores``/``targets`` as same-shape ``[n, classes]`` arrays; returns (float64 scores, bool targets)."""
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} must both be [n, classes]")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores {scores.shape} must have at least one row and one class")
    return scores.astype(np.float64, copy=False), targets > 0.5


def binarize(scores: np.ndarray, thresholds: float | np.ndarray) -> np.ndarray:
    """Decisions ``score > threshold`` (thresholds: a scalar or one per class, broadcast over the last axis)."""
    return np.asarray(scores) > np.asarray(thresholds, dtype=np.float64)


def confusion_counts(decisions: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class true positives, false positives and false negatives ``[classes]`` (int64) of ``[n, classes]`` arrays."""
    decisions = np.asarray(decisions, dtype=bool)
    targets = np.asarray(targets) > 0.5
    tp = np.count_nonzero(decisions & targets, axis=0)
    fp = np.count_nonzero(decisions & ~targets, axis=0)
    fn = np.count_nonzero(~decisions & targets, axis=0)
    return tp.astype(np.int64), fp.astype(np.int64), fn.astype(np.int64)


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, metric: Metric = "micro") -> float:
    """Micro- or macro-F1 from per-class counts."""
    if metric == "micro":
        denominator = 2 * tp.sum() + fp.sum() + fn.sum()
        return float(2 * tp.sum() / denominator) if denominator > 0 else 0.0
    if metric == "macro":
        return float(per_class_f1(tp, fp, fn).mean())
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def per_class_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 of each class (0 where the class is neither present nor predicted)."""
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(len(tp), dtype=np.float64), where=denominator > 0)


def f1_score(decisions: np.ndarray, targets: np.ndarray, metric: Metric = "micro") -> float:
    """Micro- or macro-F1 of binary decisions ``[n, classes]`` against 0/1 targets of the same shape."""
    return f1_from_counts(*confusion_counts(decisions, targets), metric=metric)


def thresholded_f1(
    scores: np.ndarray, targets: np.ndarray, thresholds: float | np.ndarray, metric: Metric = "micro"
) -> float:
    """F1 of the decisions ``scores > thresholds``."""
    return f1_score(binarize(scores, thresholds), targets, metric)


class SortedCounts:
    """TP/FP/FN of ``score > threshold`` for any thresholds, from one sort per class.

    After sorting each class's scores once, the rows above a threshold are a prefix of the sorted column, found by
    binary search, and its true positives are a cumulative sum: ``O(classes * log n)`` per evaluation instead of
    ``O(n * classes)``. Optimisers that evaluate many thresholds on frame-level data (many rows) rely on this.
    """

    def __init__(self, scores: np.ndarray, targets: np.ndarray) -> None:
        scores, targets = check_pair(scores, targets)
        order = np.argsort(-scores, axis=0, kind="stable")
        self.descending = np.take_along_axis(scores, order, axis=0)
        # searchsorted needs ascending values: keep the negated column, where "score > t" is "-score < -t".
        self._negated = np.ascontiguousarray(-self.descending.T)
        sorted_targets = np.take_along_axis(targets, order, axis=0)
        zeros = np.zeros((1, scores.shape[1]), dtype=np.int64)
        self._cum_tp = np.ascontiguousarray(np.concatenate([zeros, np.cumsum(sorted_targets, axis=0)]).T)
        self.positives = self._cum_tp[:, -1].copy()

    @property
    def classes(self) -> int:
        return len(self.positives)

    def class_counts(self, k: int, threshold: float) -> tuple[int, int]:
        """(TP, FP) of class ``k`` at ``threshold``."""
        above = int(np.searchsorted(self._negated[k], -threshold, side="left"))
        tp = int(self._cum_tp[k, above])
        return tp, above - tp

    def counts(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-class (TP, FP, FN) at ``thresholds`` ``[classes]``."""
        above = np.array(
            [np.searchsorted(self._negated[k], -t, side="left") for k, t in enumerate(np.asarray(thresholds))],
            dtype=np.int64,
        )
        tp = self._cum_tp[np.arange(self.classes), above]
        return tp, above - tp, self.positives - tp

    def f1(self, thresholds: np.ndarray, metric: Metric = "micro") -> float:
        """F1 at ``thresholds`` ``[classes]``."""
        return f1_from_counts(*self.counts(thresholds), metric=metric)
