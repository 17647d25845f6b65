"""SED post-processing: median filter, minimum event length, gap merging, event extraction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core.contract.data import Event
from jasc_core.errors import ConfigError
from jasc_core.inference.postprocess import (
    PostprocessConfig,
    decisions_to_events,
    filter_frames,
    median_filter_scores,
    scores_to_events,
)

HOP = 0.1


def column(*values):
    return np.array(values, dtype=float)[:, None]


def test_filter_lengths_are_odd_frames_per_class():
    assert filter_frames(0.0, ["a", "b"], HOP).tolist() == [1, 1]
    assert filter_frames(0.3, ["a", "b"], HOP).tolist() == [3, 3]
    assert filter_frames(0.4, ["a"], HOP).tolist() == [5]  # 4 frames has no centre: next odd length
    assert filter_frames({"b": 0.5}, ["a", "b"], HOP).tolist() == [1, 5]
    with pytest.raises(ConfigError, match="unknown class 'c'"):
        filter_frames({"c": 0.5}, ["a", "b"], HOP)


def test_median_filter_removes_spikes_and_fills_holes_per_class():
    scores = np.array([[0, 1], [1, 1], [0, 0], [0, 1], [0, 1]], dtype=float)
    filtered = median_filter_scores(scores, [3, 3])
    assert filtered[:, 0].tolist() == [0, 0, 0, 0, 0]  # a one-frame spike goes
    assert filtered[:, 1].tolist() == [1, 1, 1, 1, 1]  # a one-frame hole closes
    untouched = median_filter_scores(scores, [1, 3])
    assert untouched[:, 0].tolist() == scores[:, 0].tolist()


def test_min_length_and_merge_gap_by_hand():
    decisions = column(1, 1, 0, 1, 0, 0, 0, 1, 1, 1) > 0
    assert decisions_to_events(decisions, ["dog"], HOP) == [
        Event(0.0, 0.2, "dog"), Event(0.3, 0.4, "dog"), Event(0.7, 1.0, "dog")
    ]
    # a gap of one frame (0.1 s) merges at merge_gap 0.1; the three-frame gap (0.3 s) stays
    assert decisions_to_events(decisions, ["dog"], HOP, merge_gap=0.1) == [Event(0.0, 0.4, "dog"), Event(0.7, 1.0, "dog")]
    assert decisions_to_events(decisions, ["dog"], HOP, merge_gap=0.3) == [Event(0.0, 1.0, "dog")]
    # length 0.1 s goes at min 0.2 s; 0.2 s (exactly the minimum) stays
    assert decisions_to_events(decisions, ["dog"], HOP, min_event_length=0.2) == [
        Event(0.0, 0.2, "dog"), Event(0.7, 1.0, "dog")
    ]
    # merging comes first: the merged 0.4 s event survives a 0.3 s minimum
    assert decisions_to_events(decisions, ["dog"], HOP, min_event_length=0.3, merge_gap=0.1) == [
        Event(0.0, 0.4, "dog"), Event(0.7, 1.0, "dog")
    ]


def test_merging_never_joins_different_classes():
    decisions = np.array([[1, 0], [0, 1], [1, 0]], dtype=bool)
    events = decisions_to_events(decisions, ["a", "b"], HOP, merge_gap=0.5)
    assert events == [Event(0.0, 0.3, "a"), Event(0.1, 0.2, "b")]


def test_scores_to_events_pipeline_with_per_class_thresholds():
    scores = np.array([[0.9, 0.2], [0.1, 0.35], [0.8, 0.35], [0.9, 0.1], [0.2, 0.1]])
    config = PostprocessConfig(median_filter={"a": 0.3}, min_event_length=0.0, merge_gap=0.0)
    events = scores_to_events(scores, ["a", "b"], HOP, [0.5, 0.3], config)
    # class a: median over 3 frames -> 0.9, 0.8, 0.8, 0.8, 0.2 -> active frames 0-3; class b: frames 1-2 above 0.3
    assert events == [Event(0.0, 0.4, "a"), Event(0.1, 0.3, "b")]
    assert scores_to_events(scores, ["a", "b"], HOP, 0.95) == []
    with pytest.raises(ValueError, match="one per class"):
        scores_to_events(scores, ["a", "b"], HOP, [0.5, 0.5, 0.5])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=1, max_size=30))
def test_event_extraction_round_trips_through_the_frame_rule(rows):
    from jasc_core.contract.data import Clip
    from jasc_core.contract.tasks import event_roll

    decisions = np.array(rows, dtype=bool)
    labels = ["a", "b", "c"]
    events = decisions_to_events(decisions, labels, HOP)
    clip = Clip("c", "c.wav", 0.0, len(rows) * HOP, events=tuple(events))
    np.testing.assert_array_equal(event_roll(clip, labels, len(rows), HOP) > 0, decisions)
    assert all(event.onset < event.offset for event in events)
    # no two events of a class touch: runs are maximal
    for label in labels:
        own = sorted((e.onset, e.offset) for e in events if e.label == label)
        assert all(a[1] < b[0] for a, b in zip(own, own[1:], strict=False))


def test_config_takes_one_length_or_a_mapping_and_rejects_negatives():
    from pydantic import ValidationError

    assert PostprocessConfig(median_filter={"a": 0.3}).median_filter == {"a": 0.3}
    assert PostprocessConfig(median_filter=0.2).median_filter == 0.2
    for bad in (-1.0, {"a": -0.1}, "long"):
        with pytest.raises(ValidationError):
            PostprocessConfig(median_filter=bad)
    with pytest.raises(ValidationError):
        PostprocessConfig(merge_gap=0.1, extra_key=1)
