"""Files of any length through a model trained on fixed-length clips: windows, stitching, results (numpy only).

A file longer than the model's clip is cut into windows of ``window`` samples every ``hop`` samples; the last window
is aligned to the end of the file (so no window is padded with invented silence, unless the file is shorter than one
hop of the features). Window starts are multiples of the features' frame hop, so the frames of every window fall on
the file's frame grid. Then:

each output is combined as its task's output kind says (``jasc_core.contract.task_outputs``, never a task name):

- ``class`` (scene classification): the probabilities of the windows are averaged (each window one vote of equal
  weight); the file's label is the top class;
- ``multilabel`` (clip-level tagging): the maximum over windows (a tag applies to the file if it applies to any
  window); the file's labels are those at or above the task's threshold;
- ``frames`` (event detection): the frame probabilities of overlapping windows are averaged frame by frame into one
  score track for the whole file, *before* post-processing (median filter, thresholds, gap merging). An event that
  crosses a window edge is therefore one run of active frames in one track and comes out as one event; stitching the
  event lists of windows instead would split it at the edge. Its clip-level output (``<task>/clip``) is the maximum
  over windows, like a tag.

``WindowCombiner`` takes the scored windows of one file in any number of batches (``jasc predict`` batches windows
across files and streams long files), so only the combined scores are held, never every window's frames.

Nothing here imports torch: the ONNX path (``jasc predict --onnx``) uses the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from jasc_core.contract.data import Event
from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.task_outputs import TaskOutputs
from jasc_core.errors import DataError

#: Scores one batch of windows ``[B, S]`` -> probabilities by output name (clip-level ``[B, N]``, frame-level
#: ``[B, T, M]``, a frame-level task's clip output ``[B, M]``).
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
    """Raw scores of one file, by output name, combined over windows as each task's output kind says.

    ``outputs``: clip-level ``[N]``, frame tracks ``[T, M]`` of the whole file at ``hop_seconds`` per frame, clip
    outputs of frame-level tasks ``[M]``; ``per_window``: the clip-level main outputs of every window ``[W, N]``;
    ``windows``: the window start times in seconds; ``tasks``: the model's tasks. Each task's outputs also read as
    attributes: ``scores.scene``, ``scores.scene_per_window``, ``scores.event``, ``scores.event_clip`` (None when
    the model has the task but not that output).
    """

    duration: float
    hop_seconds: float
    windows: list[float]
    tasks: dict[str, TaskOutputs] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    per_window: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getattr__(self, attribute: str) -> np.ndarray | None:
        tasks = self.__dict__.get("tasks") or {}
        for suffix, table, output in (("_per_window", "per_window", ""), ("_clip", "outputs", "/clip"),
                                      ("", "outputs", "")):
            task = attribute[: len(attribute) - len(suffix)] if attribute.endswith(suffix) else None
            if task in tasks:
                return self.__dict__[table].get(task + output)
        raise AttributeError(f"{type(self).__name__} has no attribute {attribute!r} (tasks: {', '.join(tasks)})")


@dataclass(frozen=True)
class FrameGrid:
    """The model's time grid: sample rate, the features' hop in samples, and ``num_frames(samples)``."""

    sample_rate: int
    frame_hop: int
    num_frames: Callable[[int], int]

    @property
    def hop_seconds(self) -> float:
        return self.frame_hop / self.sample_rate

    def window_samples(self, seconds: float) -> int:
        """A window of whole frame hops: then the end-aligned last window reaches the file's last frame."""
        return max(1, round(seconds * self.sample_rate) // self.frame_hop) * self.frame_hop

    def starts(self, n_samples: int, window_seconds: float, hop_seconds: float) -> list[int]:
        """The window starts over ``n_samples`` (``window_starts``); a ``DataError`` when shorter than a frame."""
        if self.num_frames(n_samples) < 1:
            raise DataError(f"{n_samples / self.sample_rate:.4f} s of audio is shorter than one frame of the model "
                            f"({self.hop_seconds:g} s)")
        return window_starts(n_samples, self.window_samples(window_seconds), round(hop_seconds * self.sample_rate),
                             self.frame_hop)


class WindowCombiner:
    """One file's window scores, combined as they arrive (module docstring); ``scores()`` when all have come."""

    def __init__(self, tasks: Mapping[str, TaskOutputs], grid: FrameGrid, n_samples: int,
                 starts: Sequence[int]) -> None:
        self.tasks = dict(tasks)
        self.grid = grid
        self.n_samples = n_samples
        self.starts = list(starts)
        self.n_frames = grid.num_frames(n_samples)
        self.seen = 0
        self.totals: dict[str, np.ndarray] = {}
        self.counts: dict[str, np.ndarray] = {}
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, probs: Mapping[str, np.ndarray]) -> None:
        """The probabilities of the next windows (in start order), by output name."""
        size = len(next(iter(probs.values())))
        starts = self.starts[self.seen: self.seen + size]
        for name, values in probs.items():
            values = np.asarray(values, dtype=np.float32)
            spec = self.tasks[name.split("/", 1)[0]]
            if spec.is_frame_track(name):
                self.stitch(name, values, starts)
            else:
                self.parts.setdefault(name, []).append(values)
        self.seen += size

    def stitch(self, name: str, tracks: np.ndarray, starts: Sequence[int]) -> None:
        """Add frame tracks ``[B, T_w, M]`` at their start frames (``stitch_frames``, one batch at a time)."""
        total = self.totals.setdefault(name, np.zeros((self.n_frames, tracks.shape[-1]), dtype=np.float64))
        counts = self.counts.setdefault(name, np.zeros(self.n_frames, dtype=np.int64))
        for track, start in zip(tracks, starts, strict=True):
            first = start // self.grid.frame_hop
            stop = min(self.n_frames, first + track.shape[0])
            if stop > first:
                total[first:stop] += track[: stop - first]
                counts[first:stop] += 1

    @property
    def done(self) -> bool:
        return self.seen >= len(self.starts)

    def scores(self) -> FileScores:
        rate = self.grid.sample_rate
        scores = FileScores(duration=self.n_samples / rate, hop_seconds=self.grid.hop_seconds,
                            windows=[s / rate for s in self.starts], tasks=self.tasks)
        for name, total in self.totals.items():
            counts = self.counts[name]
            if np.any(counts == 0):
                raise ValueError(f"frames {np.flatnonzero(counts == 0)[:5].tolist()}... are covered by no window")
            scores.outputs[name] = (total / counts[:, None]).astype(np.float32)
        for name, parts in self.parts.items():
            windows = scores.per_window[name] = np.concatenate(parts)
            if self.tasks[name.split("/", 1)[0]].kind == "class":
                scores.outputs[name] = windows.mean(axis=0)
            else:  # a tag or a frame-level task's clip output: present in the file if present in any window
                scores.outputs[name] = windows.max(axis=0)
        return scores


def score_windows(
    waveform: np.ndarray, scorer: Scorer, grid: FrameGrid, window_seconds: float, hop_seconds: float,
    *, tasks: Mapping[str, TaskOutputs], batch_size: int = 16,
) -> FileScores:
    """Score a mono waveform at the model's rate window by window and combine (module docstring)."""
    n = len(waveform)
    starts = grid.starts(n, window_seconds, hop_seconds)
    length = min(grid.window_samples(window_seconds), n)
    combiner = WindowCombiner(tasks, grid, n, starts)
    for first in range(0, len(starts), batch_size):
        batch = np.stack([waveform[s: s + length] for s in starts[first: first + batch_size]]).astype(np.float32)
        combiner.add(scorer(batch))
    return combiner.scores()


def threshold_of(thresholds: Mapping[str, np.ndarray | float] | np.ndarray | float, task: str) -> np.ndarray | float:
    """A task's threshold(s) from a mapping by task, or the one value every task shares."""
    return thresholds[task] if isinstance(thresholds, Mapping) else thresholds


def event_rows(
    track: np.ndarray, hop: float, labels: Sequence[str], thresholds: np.ndarray | float,
    to_events: Callable[..., list[Event]],
) -> list[JSONObject]:
    """Events of a file's stitched frame scores ``track`` (``to_events``: the post-processing) with their peak scores.

    The peak is the highest raw stitched score of the event's class between its onset and offset frames.
    """
    rows = []
    for event in to_events(track, labels, hop, thresholds):
        k = list(labels).index(event.label)
        first = int(round(event.onset / hop))
        last = max(first + 1, int(round(event.offset / hop)))
        rows.append({"onset": event.onset, "offset": event.offset, "event_label": event.label,
                     "score": round(float(track[first:last, k].max()), 6)})
    return rows


def file_result(
    name: str, scores: FileScores, labels: Mapping[str, Sequence[str]],
    thresholds: Mapping[str, np.ndarray | float] | np.ndarray | float, to_events: Callable[..., list[Event]],
) -> JSONObject:
    """One file's prediction as plain JSON data, each task under its ``result_key`` as its output kind says: the
    top label (``class``) or the labels at or above the threshold (``multilabel``), with ``<key>_probabilities``;
    the event list with peak scores (``frames``)."""
    result: JSONObject = {"filename": name, "duration": round(scores.duration, 6),
                              "windows": len(scores.windows)}
    for task, spec in scores.tasks.items():
        probs = scores.outputs.get(task)
        if probs is None:
            continue
        task_labels = list(labels[task])
        if spec.frame_level:
            result[spec.result_key] = event_rows(probs, scores.hop_seconds, task_labels,
                                                 threshold_of(thresholds, task), to_events)
            continue
        if spec.kind == "class":
            result[spec.result_key] = task_labels[int(np.argmax(probs))]
        else:
            limit = np.broadcast_to(np.asarray(threshold_of(thresholds, task), dtype=float), probs.shape)
            result[spec.result_key] = [label for label, p, t in zip(task_labels, probs, limit, strict=True) if p >= t]
        result[f"{spec.result_key}_probabilities"] = {label: round(float(p), 6)
                                                      for label, p in zip(task_labels, probs, strict=True)}
    return result
