"""Frame scores -> event lists -> DCASE TSV, and reference events -> sed_scores_eval ground truth.

Event extraction is ``jasc_core.inference.postprocess.scores_to_events`` (median filter, ``score > threshold``, gap merging,
minimum length): a run of active frames is one event from its first frame's start to its last frame's end (frame
``t`` spans ``[t*hop, (t+1)*hop)``, the same rule as the training targets in ``jasc_core.data.clips``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jasc_core.contract.data import Clip
from jasc_core.contract.event_tsv import event_tsv
from jasc_core.inference.postprocess import PostprocessConfig, filter_frames, median_filter_scores, scores_to_events


def clip_events(
    scores: np.ndarray, labels: Sequence[str], hop_seconds: float, threshold: float | np.ndarray,
    postprocess: PostprocessConfig | None = None,
) -> list[tuple[float, float, str]]:
    """One clip's detected events ``(onset, offset, label)`` from frame scores ``[T, classes]``."""
    return [(e.onset, e.offset, e.label) for e in scores_to_events(scores, labels, hop_seconds, threshold, postprocess)]


def filtered_scores(
    scores: np.ndarray, labels: Sequence[str], hop_seconds: float, postprocess: PostprocessConfig | None
) -> np.ndarray:
    """Frame scores ``[T, classes]`` after the configured median filter (what sed_scores_eval is given)."""
    if postprocess is None:
        return np.asarray(scores)
    windows = filter_frames(postprocess.median_filter, labels, hop_seconds)
    if np.all(windows <= 1):
        return np.asarray(scores)
    return median_filter_scores(scores, windows)


def write_event_tsv(path: Path, events: Mapping[str, list[tuple[float, float, str]]]) -> None:
    """DCASE TSV (``jasc_core.contract.event_tsv``): header ``filename onset offset event_label``, one row per event,
    times in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [(clip_id, onset, offset, label) for clip_id, found in events.items() for onset, offset, label in found]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(event_tsv(rows))


def write_scene_tsv(path: Path, predictions: Mapping[str, str]) -> None:
    """TSV ``filename scene_label`` (the DCASE Task 1 output format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["filename", "scene_label"])
        for clip_id, label in predictions.items():
            writer.writerow([clip_id, label])


def ground_truth(clips: Sequence[Clip]) -> dict[str, list[tuple[float, float, str]]]:
    """sed_scores_eval ground truth ``{clip_id: [(onset, offset, label), ...]}`` of clips with event labels.

    Events are clipped to the clip and zero-length ones dropped (sed_scores_eval rejects them). A soft-labelled event
    is a reference where its strength is above 0.5 (DESED_task 2024 on MAESTRO: ``confidence > 0.5``); the soft
    segments that remain are merged where they touch or overlap within a class (sed_scores_eval rejects connected
    events; DESED_task merges them the same way).
    """
    truth = {}
    for clip in clips:
        if clip.events is None:
            continue
        events = []
        for event in clip.events:
            if event.strength <= 0.5:
                continue
            onset, offset = max(0.0, event.onset), min(clip.duration, event.offset)
            if offset > onset:
                events.append((float(onset), float(offset), event.label))
        truth[clip.clip_id] = merge_connected(events)
    return truth


def merge_connected(events: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Same-class events that touch or overlap joined into one, sorted by onset."""
    merged: list[tuple[float, float, str]] = []
    for onset, offset, label in sorted(events, key=lambda e: (e[2], e[0], e[1])):
        if merged and merged[-1][2] == label and onset <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], offset), label)
        else:
            merged.append((onset, offset, label))
    return sorted(merged, key=lambda e: (e[0], e[1], e[2]))
