"""MAESTRO's segment-based metrics on soft references, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core.contract.data import Event
from jasc_core.evaluation.soft_segments import (
    binary_reference,
    overlap_add,
    segment_f1_er,
    segment_pauc,
    soft_reference,
    window_segment_scores,
)


def _pauc_by_pairs(pos: np.ndarray, neg: np.ndarray, max_fpr: float) -> float:
    """Partial AUC from its definition: between FPR (k-1)/N and k/N the ROC's TPR is the share of positives scored
    above the k-th highest negative (distinct scores), integrated up to ``max_fpr`` and divided by it."""
    neg = np.sort(neg)[::-1]
    area = 0.0
    for k, value in enumerate(neg, start=1):
        left, right = (k - 1) / len(neg), min(k / len(neg), max_fpr)
        if left >= max_fpr:
            break
        area += (right - left) * np.mean(pos > value)
    return area / max_fpr


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), files=st.integers(1, 3), max_fpr=st.sampled_from([0.1, 0.25, 1.0]))
def test_segment_pauc_matches_its_definition(seed, files, max_fpr):
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c"]
    scores = {f"f{i}": rng.random((int(rng.integers(12, 40)), 3)) for i in range(files)}
    soft = {f: rng.random(s.shape) for f, s in scores.items()}
    reference = {f: binary_reference(s) for f, s in soft.items()}
    got = segment_pauc(scores, reference, labels, max_fpr=max_fpr)
    expected = []
    for m, label in enumerate(labels):
        truth = np.concatenate([reference[f][:, m] for f in scores])
        values = np.concatenate([scores[f][:, m] for f in scores])
        if truth.all() or not truth.any():
            continue
        expected.append(_pauc_by_pairs(values[truth], values[~truth], max_fpr))
        assert got[label] == pytest.approx(expected[-1], abs=1e-9)
    assert got["mean"] == pytest.approx(np.mean(expected), abs=1e-9)


def test_segment_f1_and_error_rate_count_segments():
    # 4 segments x 2 classes. Detections (score > 0.5) and soft reference (> 0.5):
    scores = {"f": np.array([[0.9, 0.1], [0.6, 0.7], [0.2, 0.8], [0.1, 0.2]])}
    soft = {"f": np.array([[1.0, 0.0], [0.5, 1.0], [0.7, 0.4], [0.0, 0.0]])}  # 0.5 is not above 0.5
    reference = {f: binary_reference(s) for f, s in soft.items()}
    out = segment_f1_er(scores, reference, ["a", "b"])
    # class a: TP seg0, FP seg1, FN seg2; class b: TP seg1, FP seg2.  TP 2, FP 2, FN 1.
    assert out["segment_micro_f1"] == pytest.approx(4 / 7)
    assert out["segment_f1/a"] == pytest.approx(2 / 4) and out["segment_f1/b"] == pytest.approx(2 / 3)
    # per segment (FN, FP): seg0 (0,0), seg1 (0,1) -> I 1, seg2 (1,1) -> S 1, seg3 (0,0); N = 3 active.
    assert out["segment_error_rate"] == pytest.approx(2 / 3)


def test_window_scores_are_time_weighted_and_windows_overlap_add():
    # hop 0.4 s: frames [0,.4) [.4,.8) [.8,1.2) ...; segment 0 gets 0.4 + 0.4 + 0.2 s of frames 0, 1, 2.
    frames = np.array([[1.0], [0.0], [0.5], [0.5], [0.5]])
    seg = window_segment_scores(frames, 0.4, 2.0)
    assert seg[:, 0].tolist() == pytest.approx([(0.4 * 1 + 0 + 0.2 * 0.5) / 1.0, 0.5])
    whole = overlap_add([(0.0, np.array([[1.0], [1.0]])), (1.0, np.array([[0.0], [0.0]]))], duration=3.0)
    assert whole[:, 0].tolist() == pytest.approx([1.0, 0.5, 0.0])


def test_soft_reference_keeps_the_highest_strength_per_segment():
    events = [Event(0.0, 1.0, "a", 0.4), Event(0.5, 2.0, "a", 0.8), Event(2.2, 2.6, "b", 1.0), Event(0, 1, "x", 1.0)]
    ref = soft_reference(events, ["a", "b"], duration=3.0)
    assert ref.tolist() == [[0.8, 0.0], [0.8, 0.0], [0.0, 1.0]]


def test_soft_references_become_merged_hard_events():
    from jasc_core.contract.data import Clip
    from jasc_core.evaluation.events import ground_truth

    clip = Clip("c", "mem", 0.0, 5.0, events=(Event(0, 2, "a", 0.6), Event(2, 3, "a", 1.0), Event(3, 4, "a", 0.4),
                                             Event(1, 2, "b", 0.5)))
    assert ground_truth([clip]) == {"c": [(0.0, 3.0, "a")]}  # 0.6 and 1.0 joined; 0.4 and 0.5 are not above 0.5
