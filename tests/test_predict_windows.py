"""Windowing and stitching of long files (no model): events crossing window edges come out whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.data.audio import prepare_waveform
from jasc_core.inference.postprocess import scores_to_events
from jasc_core.inference.windows import FrameGrid, file_result, score_windows, stitch_frames, window_starts

RATE = 8000
FRAME_HOP = 400  # 50 ms


def grid() -> FrameGrid:
    return FrameGrid(RATE, FRAME_HOP, lambda samples: samples // FRAME_HOP)


def loudness_scorer(batch: np.ndarray) -> dict[str, np.ndarray]:
    """A stand-in model: frame score = how loud the frame is (one event class), scene = mean loudness."""
    frames = batch[:, : batch.shape[1] // FRAME_HOP * FRAME_HOP].reshape(len(batch), -1, FRAME_HOP)
    loud = np.clip(np.abs(frames).mean(-1) * 2, 0, 1)[..., None].astype(np.float32)
    scene = np.stack([loud.mean((1, 2)), 1 - loud.mean((1, 2))], axis=1)
    return {"scene": scene, "event": loud}


#: Scene and event as inference sees them (their output kinds).
TASKS = {task: TASK_DESCRIPTIONS[task].outputs() for task in ("scene", "event")}


def to_events(scores, labels, hop, thresholds):
    return scores_to_events(scores, labels, hop, thresholds)


@given(n=st.integers(1, 200_000), window=st.integers(1, 50), hop=st.integers(1, 60))
@settings(max_examples=200, deadline=None)
def test_windows_cover_every_frame_and_stay_on_the_frame_grid(n, window, hop):
    window_samples, hop_samples = window * FRAME_HOP, hop * 137  # hop not a multiple of the frame hop
    starts = window_starts(n, window_samples, hop_samples, FRAME_HOP)
    assert starts[0] == 0 and all(s % FRAME_HOP == 0 for s in starts)
    assert all(s + window_samples <= n for s in starts) or starts == [0]
    n_frames = max(1, n // FRAME_HOP)
    tracks = [np.ones((min(window_samples, n) // FRAME_HOP or 1, 1)) for _ in starts]
    stitched = stitch_frames(tracks, [s // FRAME_HOP for s in starts], n_frames)  # raises if a frame is uncovered
    assert stitched.shape == (n_frames, 1)


def test_stitching_averages_overlaps():
    a = np.array([[0.0], [1.0], [1.0], [1.0]])
    b = np.array([[0.5], [0.5], [0.0], [0.0]])
    stitched = stitch_frames([a, b], [0, 2], 6)
    np.testing.assert_allclose(stitched[:, 0], [0.0, 1.0, 0.75, 0.75, 0.0, 0.0])


def test_stitching_refuses_uncovered_frames():
    with pytest.raises(ValueError, match="covered by no window"):
        stitch_frames([np.ones((2, 1))], [0], 4)


def test_events_crossing_window_edges_come_out_whole_over_95_seconds():
    # 95 s at 44.1 kHz, stereo: loud bursts straddling the edges of 10-s windows with a 5-s hop (5, 10, 15, ... s)
    # and one running into the end of the file.
    rate = 44100
    truth = [(4.5, 5.5), (9.0, 11.0), (19.8, 20.3), (33.0, 37.5), (49.9, 50.1), (68.0, 72.0), (92.0, 95.0)]
    t = np.arange(95 * rate) / rate
    left = 0.01 * np.sin(2 * np.pi * 200 * t)
    for onset, offset in truth:
        on = (t >= onset) & (t < offset)
        left[on] += 0.9 * np.sign(np.sin(2 * np.pi * 500 * t[on]))
    stereo = np.stack([left, left * 0.5], axis=1)
    waveform = prepare_waveform(stereo, rate, RATE)
    assert abs(len(waveform) - 95 * RATE) <= 1

    scores = score_windows(waveform, loudness_scorer, grid(), window_seconds=10.0, hop_seconds=5.0, tasks=TASKS)
    assert scores.windows[0] == 0.0 and scores.windows[-1] == 85.0 and len(scores.windows) == 18
    result = file_result("long.wav", scores, {"scene": ["loud", "quiet"], "event": ["burst"]}, 0.5, to_events)
    assert result["scene"] == "quiet" and result["duration"] == pytest.approx(95.0, abs=1e-3)
    events = [(e["onset"], e["offset"]) for e in result["events"]]
    assert len(events) == len(truth)  # one event per burst: none split at a window edge
    for (onset, offset), (got_on, got_off) in zip(truth, events, strict=True):
        assert abs(got_on - onset) <= 0.1 and abs(got_off - offset) <= 0.1
    assert all(0.5 < e["score"] <= 1.0 for e in result["events"])


def test_stitched_scores_differ_from_concatenated_window_events_at_an_edge():
    # The event list of each window alone would split a burst that crosses an edge; stitching does not.
    waveform = np.zeros(20 * RATE, dtype=np.float32)
    waveform[int(9.0 * RATE): int(11.0 * RATE)] = 0.9
    per_window = []
    for start in (0, 10 * RATE):
        part = loudness_scorer(waveform[None, start: start + 10 * RATE])["event"][0]
        per_window += [(e.onset + start / RATE, e.offset + start / RATE)
                       for e in scores_to_events(part, ["burst"], FRAME_HOP / RATE, 0.5)]
    assert len(per_window) == 2
    scores = score_windows(waveform, loudness_scorer, grid(), window_seconds=10.0, hop_seconds=10.0, tasks=TASKS)
    result = file_result("x", scores, {"scene": ["loud", "quiet"], "event": ["burst"]}, 0.5, to_events)
    assert [(e["onset"], e["offset"]) for e in result["events"]] == [(9.0, 11.0)]


def test_a_file_shorter_than_a_window_is_one_window():
    waveform = np.zeros(3 * RATE, dtype=np.float32)
    scores = score_windows(waveform, loudness_scorer, grid(), window_seconds=10.0, hop_seconds=5.0, tasks=TASKS)
    assert scores.windows == [0.0] and scores.event.shape == (60, 1)
