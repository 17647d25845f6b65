"""Segment rows: the thresholded F1 over them is sed_scores_eval's segment-based F1, so tuning on them targets it."""

from __future__ import annotations

import numpy as np
import pytest

from jasc_core.evaluation.dcase import dcase_event_metrics
from jasc_core.evaluation.segments import segment_rows

LABELS = ["a", "b", "c"]  # "c" never has a reference event: its false alarms still count in the micro F1


def random_split(rng: np.random.Generator, hop: float, extra_frames: bool):
    scores, truth, durations = {}, {}, {}
    for clip in range(3):
        duration = float(rng.choice([10.0, 7.3, 4.05, 1.0]))
        frames = int(np.ceil(round(duration / hop, 6))) + (int(rng.integers(0, 3)) if extra_frames else 0)
        scores[f"clip{clip}"] = rng.random((frames, len(LABELS)))
        events: list[tuple[float, float, str]] = []
        for label in LABELS[:2]:
            t = 0.0
            while (onset := t + float(rng.exponential(2.0))) < duration - 0.01:
                offset = min(duration, onset + float(rng.uniform(0.05, 3.0)))
                events.append((round(onset, 3), round(offset, 3), label))
                t = offset + 0.01  # same-class events never touch: sed_scores_eval rejects that
        truth[f"clip{clip}"], durations[f"clip{clip}"] = events, duration
    return scores, truth, durations


def micro_f1(scores: np.ndarray, targets: np.ndarray, thresholds: np.ndarray) -> float:
    detected, active = scores > thresholds, targets > 0
    tp, fp, fn = (detected & active).sum(), (detected & ~active).sum(), (~detected & active).sum()
    return 2 * tp / (2 * tp + fp + fn)


@pytest.mark.parametrize("extra_frames", [False, True], ids=["frames-within-clip", "padding-frames-past-the-end"])
@pytest.mark.parametrize("hop", [0.02, 0.064, 0.3])
def test_thresholded_segment_rows_give_sed_scores_evals_segment_f1(hop, extra_frames):
    rng = np.random.default_rng(int(hop * 1000) + extra_frames)
    for _ in range(4):
        scores, truth, durations = random_split(rng, hop, extra_frames)
        thresholds = rng.uniform(0.3, 0.95, len(LABELS))
        reference = dcase_event_metrics(scores, truth, LABELS, hop, durations, thresholds, psds=False)
        rows, targets = segment_rows(scores, truth, LABELS, hop, durations)
        assert len(rows) == sum(int(np.ceil(d)) for d in durations.values())
        assert micro_f1(rows, targets, thresholds) == pytest.approx(reference["segment_f1"]["micro"], abs=1e-12)


def test_segment_score_is_the_highest_overlapping_frame_and_target_any_overlapping_event():
    frames = np.zeros((25, 1))
    frames[9, 0] = 0.7  # [0.9, 1.0): segment 0 only
    frames[10, 0] = 0.4  # [1.0, 1.1): segment 1
    rows, targets = segment_rows({"c": frames}, {"c": [(1.95, 2.05, "x")]}, ["x"], 0.1, {"c": 2.5})
    assert rows[:, 0].tolist() == [0.7, 0.4, 0.0]  # the last segment is the half-second [2.0, 2.5)
    assert targets[:, 0].tolist() == [0.0, 1.0, 1.0]
