"""Files of any length through a model trained on fixed-length clips: windows, stitching, results (numpy only).

A file longer than the model's clip is cut into windows of ``window`` samples every ``hop`` samples; the last window
is aligned to the end of the file (so no window is padded with invented silence, unless the file is shorter than one
hop of the features). Window starts are multiples of the features' frame hop, so the frames of every window fall on
the file's frame grid. Then:

- scene: the probabilities of the windows are averaged (each window one vote of equal weight);
- events: the frame probabilities of overlapping windows are averaged frame by frame into one score track for the
  whole file, *before* post-processing (median filter, thresholds, gap merging). An event that crosses a window edge
  is therefore one run of active frames in one track and comes out as one event; stitching the event lists of
  windows instead would split it at the edge;
- clip-level event scores (``event/clip``): the maximum over windows (an event happens in the file if it happens in
  any window).

Nothing here imports torch: the ONNX path (``jasc predict --onnx``) uses the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jasc_core.errors import DataError

#: Scores one batch of windows ``[B, S]`` -> probabilities by output name (``scene [B, N]``, ``event [B, T, M]``,
#: ``event/clip [B, M]``).
Scorer = Callable[[np.ndarray], dict[str, np.ndarray]]


def window_starts(n_samples: int, window: int, hop: int, frame_hop: int) -> list[int]:
    """Start samples of the windows over a file of ``n_samples``: ``0, hop, 2*hop, ...`` and one aligned to the end.

    ``hop`` (at most ``window``) and the end-aligned start are rounded down to multiples of ``frame_hop`` (frames stay on one grid). A file
    no longer than ``window`` is one window.
    """
    if window <= 0 or hop <= 0 or frame_hop <= 0:
        raise ValueError(f"window {window}, hop {hop} and frame hop {frame_hop} must be positive")
    # A hop longer than the window would leave gaps no window scores: capped at the window.
    hop = max(frame_hop, min(hop, window) // frame_hop * frame_hop)
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    last = (n_samples - window) // frame_hop * frame_hop
    if starts[-1] < last:
        starts.append(last)
    return starts


def stitch_frames(tracks: Sequence[np.ndarray], start_frames: Sequence[int], n_frames: int) -> np.ndarray:
    """Overlap-average frame scores ``[T_w, M]`` of windows starting at ``start_frames`` into ``[n_frames, M]``.

    A frame covered by several windows gets the mean of their scores; frames past ``n_frames`` are dropped. A frame no
    window covers (only possible when a window is shorter than its stride) is an error, never a silent zero.
    """
    if not tracks:
        raise ValueError("no windows to stitch")
    classes = tracks[0].shape[-1]
    total = np.zeros((n_frames, classes), dtype=np.float64)
    counts = np.zeros(n_frames, dtype=np.int64)
    for track, start in zip(tracks, start_frames, strict=True):
        stop = min(n_frames, start + track.shape[0])
        if stop <= start:
            continue
        total[start:stop] += track[: stop - start]
        counts[start:stop] += 1
    if np.any(counts == 0):
        raise ValueError(f"frames {np.flatnonzero(counts == 0)[:5].tolist()}... are covered by no window")
    return (total / counts[:, None]).astype(np.float32)


@dataclass
class FileScores:
    """Raw scores of one file: scene probabilities averaged over windows, stitched frame scores, clip scores.

    ``scene``: ``[N]`` (None without a scene head); ``event``: ``[T, M]`` frame probabilities of the whole file at
    ``hop_seconds`` per frame; ``event_clip``: ``[M]``; ``windows``: the window start times in seconds.
    """

    duration: float
    hop_seconds: float
    windows: list[float]
    scene: np.ndarray | None = None
    event: np.ndarray | None = None
    event_clip: np.ndarray | None = None
    scene_per_window: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FrameGrid:
    """The model's time grid: sample rate, the features' hop in samples, and ``num_frames(samples)``."""

    sample_rate: int
    frame_hop: int
    num_frames: Callable[[int], int]

    @property
    def hop_seconds(self) -> float:
        return self.frame_hop / self.sample_rate


def score_windows(
    waveform: np.ndarray, scorer: Scorer, grid: FrameGrid, window_seconds: float, hop_seconds: float,
    batch_size: int = 16,
) -> FileScores:
    """Score a mono waveform at the model's rate window by window and combine (module docstring)."""
    n = len(waveform)
    if grid.num_frames(n) < 1:
        raise DataError(f"{n / grid.sample_rate:.4f} s of audio is shorter than one frame of the model "
                        f"({grid.hop_seconds:g} s)")
    # A window of whole frame hops: then the end-aligned last window reaches the file's last frame.
    window = max(1, round(window_seconds * grid.sample_rate) // grid.frame_hop) * grid.frame_hop
    starts = window_starts(n, window, round(hop_seconds * grid.sample_rate), grid.frame_hop)
    length = min(window, n)
    outputs: dict[str, list[np.ndarray]] = {}
    for first in range(0, len(starts), batch_size):
        batch = np.stack([waveform[s: s + length] for s in starts[first: first + batch_size]]).astype(np.float32)
        for name, probs in scorer(batch).items():
            outputs.setdefault(name, []).append(np.asarray(probs, dtype=np.float32))
    joined = {name: np.concatenate(parts) for name, parts in outputs.items()}
    scores = FileScores(duration=n / grid.sample_rate, hop_seconds=grid.hop_seconds,
                        windows=[s / grid.sample_rate for s in starts])
    if "scene" in joined:
        scores.scene_per_window = joined["scene"]
        scores.scene = joined["scene"].mean(axis=0)
    if "event" in joined:
        scores.event = stitch_frames(list(joined["event"]), [s // grid.frame_hop for s in starts], grid.num_frames(n))
    if "event/clip" in joined:
        scores.event_clip = joined["event/clip"].max(axis=0)
    return scores


def event_rows(
    scores: FileScores, labels: Sequence[str], thresholds: np.ndarray | float, to_events: Callable[..., Any],
) -> list[dict[str, Any]]:
    """Events of a file's stitched frame scores (``to_events``: the post-processing) with each event's peak score.

    The peak is the highest raw stitched score of the event's class between its onset and offset frames.
    """
    if scores.event is None:
        return []
    rows = []
    hop = scores.hop_seconds
    for event in to_events(scores.event, labels, hop, thresholds):
        k = list(labels).index(event.label)
        first = int(round(event.onset / hop))
        last = max(first + 1, int(round(event.offset / hop)))
        rows.append({"onset": event.onset, "offset": event.offset, "event_label": event.label,
                     "score": round(float(scores.event[first:last, k].max()), 6)})
    return rows


def file_result(
    name: str, scores: FileScores, labels: Mapping[str, Sequence[str]], thresholds: np.ndarray | float,
    to_events: Callable[..., Any],
) -> dict[str, Any]:
    """One file's prediction as plain JSON data: scene label and probabilities, events with their peak scores."""
    result: dict[str, Any] = {"filename": name, "duration": round(scores.duration, 6),
                              "windows": len(scores.windows)}
    if scores.scene is not None:
        scene_labels = list(labels["scene"])
        result["scene"] = scene_labels[int(np.argmax(scores.scene))]
        result["scene_probabilities"] = {label: round(float(p), 6)
                                         for label, p in zip(scene_labels, scores.scene, strict=True)}
    if scores.event is not None:
        result["events"] = event_rows(scores, labels["event"], thresholds, to_events)
    return result
