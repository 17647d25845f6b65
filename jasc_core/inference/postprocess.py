"""SED post-processing: per-class median filtering and event extraction from frame decisions.

Frame ``t`` of a clip spans ``[t * hop, (t + 1) * hop)`` seconds (the rule of the training targets in
``jasc_core.data.clips``), so a run of active frames ``[start, stop)`` is the event ``(start * hop, stop * hop)``.

The pipeline of ``scores_to_events`` (the evaluation's event extraction, DCASE TSV output included):

1. median filter of each class's scores over time, a window of ``median_filter`` seconds (one value or one per
   class), converted to an odd number of frames with the hop;
2. decisions ``score > threshold`` (one threshold, or one per class);
3. same-class events separated by a gap of at most ``merge_gap`` seconds are merged;
4. events shorter than ``min_event_length`` seconds are dropped.

A median filter with an odd window commutes with any non-decreasing map, the step ``x > threshold`` included, so
filtering the scores and then thresholding gives the same decisions as filtering the binary decisions (the DCASE
baselines' order); filtering the scores keeps them usable for threshold-free metrics (PSDS) too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jasc_core.contract.data import Event
from jasc_core.errors import ConfigError
from jasc_core.recipes.blocks import PostprocessConfig

#: Times are rounded to this many decimals, so that ``t * hop`` does not print as 1.2000000000000002.
TIME_DECIMALS = 6


def filter_frames(
    median_filter: float | Mapping[str, float], labels: Sequence[str], hop_seconds: float
) -> np.ndarray:
    """Median-filter windows in frames ``[classes]`` (odd, 1 = off) from lengths in seconds.

    A per-class mapping may leave classes out (no filter for them); a key that is not a label is an error.
    """
    if hop_seconds <= 0:
        raise ValueError(f"hop_seconds must be positive, got {hop_seconds}")
    if isinstance(median_filter, Mapping):
        unknown = [key for key in median_filter if key not in labels]
        if unknown:
            raise ConfigError(
                f"evaluate.postprocess.median_filter: unknown class {unknown[0]!r}; classes: {', '.join(labels)}"
            )
        seconds = np.array([float(median_filter.get(label, 0.0)) for label in labels])
    else:
        seconds = np.full(len(labels), float(median_filter))
    if np.any(seconds < 0):
        raise ConfigError("evaluate.postprocess.median_filter: lengths must be >= 0 seconds")
    frames = np.maximum(1, np.rint(seconds / hop_seconds).astype(np.int64))
    # An even window has no centre frame and would shift events by half a frame; round up to the next odd length.
    return frames + (frames % 2 == 0)


def median_filter_scores(scores: np.ndarray, frames: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """Median filter of each class's scores ``[T, classes]`` over time, window ``frames`` (one or per class).

    Edges repeat the first and last frame (``mode="nearest"``), so a filter never invents activity at clip edges.
    """
    from scipy.ndimage import median_filter

    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [frames, classes], got shape {scores.shape}")
    windows = np.broadcast_to(np.asarray(frames, dtype=np.int64), (scores.shape[1],))
    if np.any(windows < 1):
        raise ValueError("median filter windows must be >= 1 frame")
    out = scores.copy()
    # Classes sharing a window are filtered in one call (a size of 1 across classes keeps them independent).
    for window in np.unique(windows):
        if window == 1:
            continue
        columns = np.flatnonzero(windows == window)
        out[:, columns] = median_filter(scores[:, columns], size=(int(window), 1), mode="nearest")
    return out


def frame_runs(decisions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of active frames in ``[T, classes]`` decisions: ``(class, start, stop)`` arrays, class-major, by start."""
    decisions = np.asarray(decisions, dtype=bool)
    if decisions.ndim != 2:
        raise ValueError(f"decisions must be [frames, classes], got shape {decisions.shape}")
    padded = np.zeros((decisions.shape[1], decisions.shape[0] + 2), dtype=np.int8)
    padded[:, 1:-1] = decisions.T
    change = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends
    start_class, starts = np.nonzero(change == 1)
    _, stops = np.nonzero(change == -1)
    return start_class, starts, stops  # np.nonzero is row-major: starts and stops pair up within each class


def merge_and_filter_runs(
    classes: np.ndarray, starts: np.ndarray, stops: np.ndarray, hop_seconds: float,
    min_event_length: float = 0.0, merge_gap: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge same-class runs whose gap is at most ``merge_gap`` seconds, then drop runs shorter than
    ``min_event_length`` seconds. Inputs class-major and sorted by start (as ``frame_runs`` gives them)."""
    tolerance = 1e-9  # a gap of exactly merge_gap seconds merges despite float rounding of frames * hop
    if merge_gap > 0 and len(starts) > 1:
        gap = (starts[1:] - stops[:-1]) * hop_seconds
        joins = (classes[1:] == classes[:-1]) & (gap <= merge_gap + tolerance)
        # A run begins a merged event unless it joins the previous one; the merged event ends at the stop of the
        # last run before the next beginning.
        first = np.concatenate([[True], ~joins])
        last = np.concatenate([~joins, [True]])
        classes, starts, stops = classes[first], starts[first], stops[last]
    if min_event_length > 0:
        keep = (stops - starts) * hop_seconds >= min_event_length - tolerance
        classes, starts, stops = classes[keep], starts[keep], stops[keep]
    return classes, starts, stops


def decisions_to_events(
    decisions: np.ndarray, labels: Sequence[str], hop_seconds: float,
    min_event_length: float = 0.0, merge_gap: float = 0.0,
) -> list[Event]:
    """Events of one clip's binary frame decisions ``[T, classes]`` (steps 3 and 4), sorted by onset then label."""
    decisions = np.asarray(decisions, dtype=bool)
    if decisions.ndim != 2 or decisions.shape[1] != len(labels):
        raise ValueError(f"decisions {decisions.shape} must be [frames, {len(labels)} classes]")
    classes, starts, stops = merge_and_filter_runs(*frame_runs(decisions), hop_seconds, min_event_length, merge_gap)
    events = [
        Event(round(float(start) * hop_seconds, TIME_DECIMALS), round(float(stop) * hop_seconds, TIME_DECIMALS),
              labels[k])
        for k, start, stop in zip(classes.tolist(), starts.tolist(), stops.tolist(), strict=True)
    ]
    return sorted(events, key=lambda event: (event.onset, event.label, event.offset))


def scores_to_events(
    scores: np.ndarray,
    labels: Sequence[str],
    hop_seconds: float,
    threshold: float | Sequence[float] | np.ndarray,
    config: PostprocessConfig | None = None,
) -> list[Event]:
    """One clip's events from its frame scores ``[T, classes]``: median filter, ``score > threshold``, gap merging,
    minimum length (the module's pipeline). ``threshold`` is one value or one per class."""
    config = config or PostprocessConfig()
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(f"scores {scores.shape} must be [frames, {len(labels)} classes]")
    thresholds = np.asarray(threshold, dtype=np.float64)
    if thresholds.ndim > 1 or (thresholds.ndim == 1 and len(thresholds) != len(labels)):
        raise ValueError(f"threshold must be one value or {len(labels)} (one per class), got shape {thresholds.shape}")
    filtered = median_filter_scores(scores, filter_frames(config.median_filter, labels, hop_seconds))
    return decisions_to_events(
        filtered > thresholds, labels, hop_seconds, config.min_event_length, config.merge_gap
    )
