"""``coordinate``: exact coordinate ascent on F1 over the sorted scores.

With the other classes' thresholds fixed, micro-F1 as a function of threshold k only changes where the threshold
crosses one of class k's scores. Each class's scores are sorted once (descending); detecting the top j rows gives
``tp_k(j)`` as a cumulative sum of the sorted targets and ``fp_k(j) = j - tp_k(j)``, so every cut point is evaluated
at once given the other classes' pooled TP/FP/FN. A threshold moves only to a cut that strictly raises F1, and sweeps
over the classes repeat until no threshold moves (F1 rises at every move and the cuts are finite, so this ends).
A cut between two scores puts the threshold at their midpoint. Macro-F1 separates over classes, so one sweep finds
its exact optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from jasc_thresholds.base import F1Optimizer, MetricConfig


@dataclass(frozen=True)
class ClassCuts:
    """Every distinct way to threshold one class, highest threshold first: thresholds and the TP/FP they give."""

    thresholds: np.ndarray
    detected: np.ndarray  # rows detected at each cut (increasing)
    tp: np.ndarray
    fp: np.ndarray
    positives: int
    sorted_scores: np.ndarray  # descending

    def index_of(self, threshold: float) -> int:
        """The cut that makes the same decisions as ``threshold`` (``score > threshold``)."""
        # The rows above any threshold are a prefix of the sorted scores that ends where the score strictly drops,
        # which is always one of the cuts.
        above = int(np.searchsorted(-self.sorted_scores, -threshold, side="left"))
        return int(np.searchsorted(self.detected, above))


def class_cuts(scores: np.ndarray, targets: np.ndarray) -> ClassCuts:
    """All cut points of one class (``scores``/``targets`` ``[n]``), from one sort and one cumulative sum."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    cum_tp = np.concatenate([[0], np.cumsum(targets[order], dtype=np.int64)])
    n = len(s)
    # Detecting the top j rows is possible only where the next score is strictly lower (tied scores go together).
    j = np.concatenate([[0], np.flatnonzero(s[:-1] > s[1:]) + 1, [n]]).astype(np.int64)
    thresholds = np.empty(len(j))
    thresholds[0] = s[0]  # nothing is strictly above the highest score
    thresholds[-1] = np.nextafter(s[-1], -np.inf)  # everything is above a hair under the lowest
    inner = j[1:-1]
    thresholds[1:-1] = 0.5 * (s[inner - 1] + s[inner])  # midway between the last detected and the first missed score
    tp = cum_tp[j]
    return ClassCuts(thresholds=thresholds, detected=j, tp=tp, fp=j - tp, positives=int(cum_tp[-1]), sorted_scores=s)


def cut_f1(cuts: ClassCuts, other_tp: int, other_fp: int, other_fn: int, metric: str) -> np.ndarray:
    """F1 at every cut of one class, the other classes' pooled counts fixed (micro) or ignored (macro: own F1)."""
    fn = cuts.positives - cuts.tp
    if metric == "macro":
        other_tp = other_fp = other_fn = 0
    tp = other_tp + cuts.tp
    denominator = 2 * tp + other_fp + cuts.fp + other_fn + fn
    return np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0)


def coordinate_ascent(
    scores: np.ndarray, targets: np.ndarray, init: np.ndarray, metric: str = "micro", max_sweeps: int = 100
) -> np.ndarray:
    """Exact coordinate ascent on micro- or macro-F1 from thresholds ``init`` ``[classes]``; returns the thresholds."""
    classes = scores.shape[1]
    cuts = [class_cuts(scores[:, k], targets[:, k]) for k in range(classes)]
    index = np.array([cuts[k].index_of(init[k]) for k in range(classes)])
    tp = np.array([cuts[k].tp[index[k]] for k in range(classes)], dtype=np.int64)
    fp = np.array([cuts[k].fp[index[k]] for k in range(classes)], dtype=np.int64)
    fn = np.array([cuts[k].positives for k in range(classes)], dtype=np.int64) - tp
    thresholds = np.asarray(init, dtype=np.float64).copy()
    for _ in range(max_sweeps):
        moved = False
        for k, c in enumerate(cuts):
            f1 = cut_f1(c, tp.sum() - tp[k], fp.sum() - fp[k], fn.sum() - fn[k], metric)
            best = int(np.argmax(f1))  # ties: the highest threshold (fewest detections)
            if f1[best] > f1[index[k]] + 1e-12:
                index[k] = best
                tp[k], fp[k], fn[k] = c.tp[best], c.fp[best], c.positives - c.tp[best]
                thresholds[k] = c.thresholds[best]
                moved = True
        if not moved:
            break
    return thresholds


class CoordinateAscent(F1Optimizer):
    """Exact coordinate ascent on F1 over each class's sorted scores, until no threshold moves."""

    name = "coordinate"

    class Config(MetricConfig):
        init: float = Field(0.5, description="initial threshold of every class")
        max_sweeps: int = Field(100, ge=1, description="upper bound on sweeps over the classes (it stops earlier)")

    def _fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        init = np.full(scores.shape[1], self.config.init)
        return coordinate_ascent(scores, targets, init, self.config.metric, self.config.max_sweeps)
