"""Frame scores pooled into fixed-length segments, as segment-based F1 sees them.

sed_scores_eval's segment-based F1 (DCASE: 1-s segments from the clip start, the last one cut at the clip's end)
detects a class in a segment when the highest score of the frames overlapping it exceeds the threshold, and counts
the segment as a reference when an event of the class overlaps it. ``segment_rows`` turns a split's frame scores and
reference events into exactly those decisions' inputs, one row per (clip, segment), so that a threshold optimiser
tuned on them maximises the segment-based metric rather than the frame-level one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: Times are compared after rounding to microseconds, as sed_scores_eval does, so float noise moves no boundary.
TIME_DECIMALS = 6


def frames_in_clip(n_frames: int, duration: float, hop_seconds: float) -> int:
    """How many of ``n_frames`` start before the clip's end: the frames sed_scores_eval is given (padding after
    the end is not audio)."""
    return min(n_frames, math.ceil(round(duration / hop_seconds, TIME_DECIMALS)))


def segment_rows(
    scores: Mapping[str, np.ndarray],
    truth: Mapping[str, Sequence[tuple[float, float, str]]],
    labels: Sequence[str],
    hop_seconds: float,
    durations: Mapping[str, float],
    segment_seconds: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Segment scores and targets ``[segments, classes]`` of the clips in ``truth``.

    ``scores`` maps clip ids to frame scores ``[T, classes]`` (frame ``t`` spans ``[t*hop, (t+1)*hop)``, frames
    past the clip's duration are ignored); ``truth`` maps them to reference events ``(onset, offset, label)``.
    A segment's score is the maximum over the frames that overlap it; its target is 1 where a reference event of
    the class overlaps it.
    """
    if segment_seconds <= 0:
        raise ValueError(f"segment length must be positive, got {segment_seconds}")
    column = {label: i for i, label in enumerate(labels)}
    all_scores: list[np.ndarray] = []
    all_targets: list[np.ndarray] = []
    for clip_id, events in truth.items():
        frames = np.asarray(scores[clip_id], dtype=np.float64)
        duration = float(durations[clip_id])
        n_frames = frames_in_clip(len(frames), duration, hop_seconds)
        frame_onsets = np.round(np.arange(n_frames) * hop_seconds, TIME_DECIMALS)
        frame_offsets = np.round(np.minimum(np.arange(1, n_frames + 1) * hop_seconds, duration), TIME_DECIMALS)
        n_segments = math.ceil(round(duration / segment_seconds, TIME_DECIMALS))
        bounds = np.round(np.arange(n_segments + 1) * segment_seconds, TIME_DECIMALS)
        starts, ends = bounds[:-1], np.minimum(bounds[1:], round(duration, TIME_DECIMALS))
        clip_scores = np.zeros((n_segments, len(labels)))
        for s in range(n_segments):
            overlapping = (frame_onsets < ends[s]) & (frame_offsets > starts[s])
            if overlapping.any():
                clip_scores[s] = frames[:n_frames][overlapping].max(axis=0)
        clip_targets = np.zeros((n_segments, len(labels)))
        for onset, offset, label in events:
            active = (starts < round(offset, TIME_DECIMALS)) & (ends > round(onset, TIME_DECIMALS))
            clip_targets[active, column[label]] = 1.0
        all_scores.append(clip_scores)
        all_targets.append(clip_targets)
    if not all_scores:
        return np.zeros((0, len(labels))), np.zeros((0, len(labels)))
    return np.concatenate(all_scores), np.concatenate(all_targets)
