"""Evaluation metrics against hand computations; sed_scores_eval through the shims on a hand case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from jasc_core.contract.metrics import event_frame_metrics, f_score, scene_metrics
from jasc_core.evaluation.dcase import dcase_event_metrics, score_dataframes
from jasc_core.evaluation.events import clip_events, ground_truth, write_event_tsv
from jasc_core.evaluation.sed_scores import import_sed_scores_eval


def test_scene_metrics_by_hand():
    reference = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    m = scene_metrics(reference, predicted, ["a", "b", "c"])
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # a: TP2 FP0 FN1 -> 4/5; b: TP1 FP1 FN1 -> 2/4; c: TP1 FP1 FN0 -> 2/3
    assert m["per_class_f1"] == pytest.approx({"a": 0.8, "b": 0.5, "c": 2 / 3})
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_event_frame_metrics_by_hand():
    # 2 clips x 3 frames x 3 classes; class 'c' never occurs in the reference.
    targets = np.zeros((2, 3, 3))
    targets[0, :2, 0] = 1  # a: frames 0,1 of clip 0
    targets[1, 1, 1] = 1  # b: frame 1 of clip 1
    scores = np.zeros((2, 3, 3))
    scores[0, 0, 0] = 0.9  # a: TP
    scores[0, 2, 0] = 0.7  # a: FP      (a: TP1 FP1 FN1 -> 0.5)
    scores[1, 1, 1] = 0.6  # b: TP      (b: TP1 -> 1.0)
    scores[1, 0, 2] = 0.8  # c: FP      (c: absent from the reference -> 0 in the macro average)
    scores[1, 2, 2] = 0.5  # not above the threshold 0.5
    m = event_frame_metrics(scores, targets, ["a", "b", "c"], threshold=0.5)
    assert m["frame_counts"] == {"tp": [1, 1, 0], "fp": [1, 0, 1], "fn": [1, 0, 0]}
    assert m["frame_micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    assert m["frame_per_class_f1"] == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.0})
    assert m["frame_macro_f1"] == pytest.approx(0.5)
    # Per-class thresholds: raising a's threshold above 0.7 removes its false positive.
    m = event_frame_metrics(scores, targets, ["a", "b", "c"], threshold=np.array([0.75, 0.5, 0.9]))
    assert m["frame_per_class_f1"]["a"] == pytest.approx(2 / 3)
    assert m["frame_counts"]["fp"] == [0, 0, 0]


@settings(max_examples=40, deadline=None)
@given(
    scores=arrays(np.float64, (3, 4, 2), elements=st.floats(0, 1)),
    targets=arrays(np.int8, (3, 4, 2), elements=st.integers(0, 1)),
)
def test_frame_micro_f_is_the_pooled_formula(scores, targets):
    m = event_frame_metrics(scores, targets, ["a", "b"], 0.5)
    decisions, truth = scores > 0.5, targets > 0
    tp, fp, fn = (decisions & truth).sum(), (decisions & ~truth).sum(), (~decisions & truth).sum()
    assert m["frame_micro_f1"] == pytest.approx(f_score(tp, fp, fn))
    assert 0.0 <= m["frame_macro_f1"] <= 1.0


def _hand_case():
    hop = 0.1
    scores = np.zeros((50, 2))
    scores[11:21, 0] = 0.9  # x detected [1.1, 2.1]: inside the 200 ms collars of reference [1.0, 2.0]
    scores[33:40, 1] = 0.8  # y detected [3.3, 4.0]: onset 300 ms late -> outside the collar
    truth = {"clip": [(1.0, 2.0, "x"), (3.0, 4.0, "y")]}
    return {"clip": scores}, truth, hop


def test_collar_and_segment_f1_on_a_hand_case():
    scores, truth, hop = _hand_case()
    m = dcase_event_metrics(scores, truth, ["x", "y"], hop, {"clip": 5.0}, 0.5)
    # Collar: x TP; y one FP and one FN -> micro 2*1/(2+1+1), macro (1 + 0) / 2.
    assert m["collar_f1"]["per_class"] == pytest.approx({"x": 1.0, "y": 0.0})
    assert m["collar_f1"]["micro"] == pytest.approx(0.5)
    assert m["collar_f1"]["macro"] == pytest.approx(0.5)
    # 1-s segments: x reference in [1,2), detected in [1,2) and [2,3) -> TP1 FP1; y reference and detection in [3,4).
    assert m["segment_f1"]["per_class"] == pytest.approx({"x": 2 / 3, "y": 1.0})
    assert m["segment_f1"]["micro"] == pytest.approx(4 / 5)
    assert m["segment_f1"]["macro"] == pytest.approx((2 / 3 + 1) / 2)


def test_psds1_rewards_every_class_and_penalises_their_spread():
    # Each reference detected exactly: TPR 1 for both classes at zero false positives, so PSDS1 is 1. With class y
    # never scored above 0, its TPR is 0: the mean TPR 0.5 minus alpha_st (1) times their std (0.5) leaves 0.
    truth = {"clip": [(1.0, 2.0, "x"), (3.0, 4.0, "y")]}
    scores = np.zeros((50, 2))
    scores[10:20, 0] = 0.9
    scores[30:40, 1] = 0.8
    perfect = dcase_event_metrics({"clip": scores}, truth, ["x", "y"], 0.1, {"clip": 5.0}, 0.5)
    assert perfect["psds1"] == pytest.approx(1.0)
    assert perfect["psds2"] == pytest.approx(1.0)
    scores[30:40, 1] = 0.0
    one_class = dcase_event_metrics({"clip": scores}, truth, ["x", "y"], 0.1, {"clip": 5.0}, 0.5)
    assert one_class["psds1"] == pytest.approx(0.0)


def test_a_class_without_references_is_left_to_sed_scores_eval_but_its_false_alarms_count():
    scores, truth, hop = _hand_case()
    z = np.zeros((50, 1))
    z[5:15, 0] = 0.9  # a 'z' detection over [0.5, 1.5]: one false event, two false 1-s segments
    m = dcase_event_metrics({"clip": np.hstack([scores["clip"], z])}, truth, ["x", "y", "z"], hop, {"clip": 5.0}, 0.5)
    assert m["classes_without_reference"] == ["z"]
    assert m["collar_f1"]["micro"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 1))
    assert m["segment_f1"]["micro"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 0))
    assert set(m["collar_f1"]["per_class"]) == {"x", "y"}


def test_collar_offset_tolerance_grows_with_event_length():
    # A 5-s reference event: offset collar max(0.2, 20% of 5 s) = 1 s, so an offset 0.8 s early still matches.
    scores = np.zeros((100, 1))
    scores[10:52, 0] = 0.9  # [1.0, 5.2] against reference [1.0, 6.0]
    m = dcase_event_metrics({"c": scores}, {"c": [(1.0, 6.0, "x")]}, ["x"], 0.1, {"c": 10.0}, 0.5, psds=False)
    assert m["collar_f1"]["micro"] == pytest.approx(1.0)


def test_shim_fixes_the_read_only_kernel_input():
    import_sed_scores_eval()
    from sed_scores_eval.base_modules import statistics

    scores = np.array([0.4, 1.0, 0.6, 0.6, 1.0, 1.0, 0.4])
    scores.setflags(write=False)  # what pandas >= 3 hands out from DataFrame.to_numpy()
    timestamps = np.linspace(0.0, 1.4, 8)
    timestamps.setflags(write=False)
    unique, onsets, offsets = statistics.onset_offset_curves(scores, timestamps)
    assert unique.tolist() == [0.4, 0.6, 1.0]
    with pytest.raises(ValueError, match="read-only"):
        statistics.onset_offset_curves.__wrapped__(scores, timestamps)


def test_score_dataframes_stop_at_the_clip_duration():
    frames = score_dataframes({"c": np.full((11, 1), 0.5)}, ["x"], 0.1, {"c": 1.05})
    df = frames["c"]
    assert df["offset"].iloc[-1] == pytest.approx(1.05)
    assert len(df) == 11


def test_event_tsv_and_ground_truth(tmp_path):
    from jasc_core.contract.data import Clip, Event

    scores, _, hop = _hand_case()
    events = clip_events(scores["clip"], ["x", "y"], hop, 0.5)
    assert events == [(pytest.approx(1.1), pytest.approx(2.1), "x"), (pytest.approx(3.3), pytest.approx(4.0), "y")]
    write_event_tsv(tmp_path / "e.tsv", {"clip": events})
    lines = (tmp_path / "e.tsv").read_text().splitlines()
    assert lines == ["filename\tonset\toffset\tevent_label", "clip\t1.100\t2.100\tx", "clip\t3.300\t4.000\ty"]
    clips = [Clip("a", "p", 0, 2.0, events=(Event(0.5, 0.5, "x"), Event(1.5, 3.0, "y"))), Clip("b", "p", 0, 2.0)]
    assert ground_truth(clips) == {"a": [(1.5, 2.0, "y")]}  # zero-length dropped, clipped, unlabelled clip left out
