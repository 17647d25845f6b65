"""F1 of binary decisions and the row flattening threshold optimisers rely on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_thresholds.metrics import SortedCounts, as_rows, binarize, confusion_counts, f1_score, thresholded_f1


def test_fixed_threshold_f1_by_hand():
    scores = np.array([[0.9, 0.2], [0.5, 0.6], [0.4, 0.7], [0.1, 0.5]])
    targets = np.array([[1, 0], [1, 1], [0, 1], [0, 1]])
    # score > 0.5: class 0 detects row 0 only (0.5 is not above 0.5) -> TP 1, FP 0, FN 1;
    # class 1 detects rows 1 and 2 -> TP 2, FP 0, FN 1 (row 3's 0.5 is not above).
    tp, fp, fn = confusion_counts(binarize(scores, 0.5), targets)
    assert tp.tolist() == [1, 2] and fp.tolist() == [0, 0] and fn.tolist() == [1, 1]
    assert thresholded_f1(scores, targets, 0.5) == pytest.approx(2 * 3 / (2 * 3 + 0 + 2))  # micro: 6/8
    assert thresholded_f1(scores, targets, 0.5, "macro") == pytest.approx((2 / 3 + 4 / 5) / 2)
    # per-class thresholds: class 0 at 0.3 adds row 2 as a false positive and row 1 as a true positive
    assert thresholded_f1(scores, targets, np.array([0.3, 0.5])) == pytest.approx(2 * 4 / (2 * 4 + 1 + 1))


def test_f1_is_zero_without_positives_or_detections():
    nothing = np.zeros((3, 2))
    assert f1_score(nothing, nothing) == 0.0
    assert f1_score(nothing, nothing, "macro") == 0.0
    with pytest.raises(ValueError, match="metric"):
        f1_score(nothing, nothing, "weighted")


def test_as_rows_flattens_frames_and_ragged_clips():
    frames = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert as_rows(frames).shape == (6, 4)
    np.testing.assert_array_equal(as_rows(frames)[3], frames[1, 0])
    ragged = [np.zeros((5, 4)), np.ones((2, 4))]
    assert as_rows(ragged).shape == (7, 4)
    flat = np.zeros((7, 4))
    assert as_rows(flat) is flat
    with pytest.raises(ValueError, match="same number of classes"):
        as_rows([np.zeros((5, 4)), np.zeros((2, 3))])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.0]), min_size=3, max_size=3), min_size=n,
                     max_size=n),
            st.lists(st.lists(st.integers(0, 1), min_size=3, max_size=3), min_size=n, max_size=n),
            st.lists(st.sampled_from([-0.1, 0.0, 0.2, 0.35, 0.5, 1.0]), min_size=3, max_size=3),
        )
    )
)
def test_sorted_counts_match_direct_counting(data):
    scores, targets, thresholds = (np.array(part, dtype=float) for part in data)
    table = SortedCounts(scores, targets)
    expected = confusion_counts(binarize(scores, thresholds), targets)
    for got, want in zip(table.counts(thresholds), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert table.f1(thresholds, "macro") == pytest.approx(thresholded_f1(scores, targets, thresholds, "macro"))
    assert table.class_counts(1, thresholds[1]) == (expected[0][1], expected[1][1])
