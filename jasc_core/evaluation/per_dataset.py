"""Event metrics per dataset, each on the classes its dataset annotates (a recipe joining DESED and MAESTRO).

A split whose clips come from several datasets (``Clip.dataset``), or annotate only some classes
(``Clip.event_classes``), is scored once per dataset: its clips, its classes. A model's scores for classes the
dataset never annotated are neither hits nor false alarms there. Each dataset gets:

- frame-level F (the task description's metrics), collar/segment F1 and PSDS1/PSDS2 (``dcase_event_metrics``) on its
  clips and classes;
- where its references are soft (an event strength below 1: MAESTRO Real), MAESTRO's segment-based metrics
  (``soft_segments``): the windows of each recording overlap-added into 1-s segment scores, mean pAUC (max FPR 0.1)
  and F1 / error rate at 0.5 against the soft reference binarised at 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from jasc_core.contract.data import Clip
from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.evaluation.dcase import dcase_event_metrics
from jasc_core.evaluation.events import ground_truth
from jasc_core.evaluation.segments import frames_in_clip
from jasc_core.evaluation.soft_segments import (
    binary_reference,
    overlap_add,
    segment_f1_er,
    segment_pauc,
    soft_reference,
    window_segment_scores,
)


def dataset_groups(clips: Sequence[Clip], labels: Sequence[str]) -> dict[str, list[str]]:
    """``{dataset: its classes}`` when the split joins datasets or leaves classes out; empty otherwise."""
    groups: dict[str, list[str]] = {}
    partial = False
    for clip in clips:
        name = clip.dataset or "all"
        classes = list(labels) if clip.event_classes is None else [c for c in labels if c in clip.event_classes]
        partial |= clip.event_classes is not None
        groups.setdefault(name, classes)
    return groups if partial or len(groups) > 1 else {}


def is_soft(clips: Sequence[Clip]) -> bool:
    """True when some reference event of ``clips`` has a strength below 1 (soft labels)."""
    return any(event.strength < 1.0 for clip in clips for event in (clip.events or ()))


def soft_segment_metrics(clips: Sequence[Clip], scores: Mapping[str, np.ndarray], labels: Sequence[str],
                         classes: Sequence[str], hop_seconds: float, threshold: float = 0.5) -> JSONObject:
    """MAESTRO's metrics of ``clips`` (windows of recordings): overlap-added 1-s segment scores per recording
    against the soft reference of all its windows' events, on ``classes``."""
    columns = [list(labels).index(c) for c in classes]
    windows: dict[str, list[tuple[float, np.ndarray]]] = {}
    events: dict[str, list] = {}
    lengths: dict[str, float] = {}
    for clip in clips:
        if clip.events is None or clip.clip_id not in scores:
            continue
        frames = np.asarray(scores[clip.clip_id])[:, columns]
        frames = frames[: frames_in_clip(len(frames), clip.duration, hop_seconds)]
        windows.setdefault(clip.path, []).append(
            (clip.start, window_segment_scores(frames, hop_seconds, clip.duration)))
        events.setdefault(clip.path, []).extend(
            type(e)(e.onset + clip.start, e.offset + clip.start, e.label, e.strength) for e in clip.events)
        lengths[clip.path] = max(lengths.get(clip.path, 0.0), clip.start + clip.duration)
    if not windows:
        return {}
    segment_scores = {path: overlap_add(w, lengths[path]) for path, w in windows.items()}
    reference = {path: binary_reference(soft_reference(events[path], classes, lengths[path])) for path in windows}
    pauc = segment_pauc(segment_scores, reference, classes)
    return {"segment_mpauc": pauc.pop("mean"), "segment_pauc": pauc,
            **segment_f1_er(segment_scores, reference, classes, threshold)}


def per_dataset_metrics(
    clips: Sequence[Clip], clip_ids: Sequence[str], probs: np.ndarray, targets: np.ndarray, labelled: np.ndarray,
    labels: Sequence[str], hop_seconds: float, threshold: float | np.ndarray,
    smooth: Callable[[np.ndarray], np.ndarray], *, psds: bool = True, task: str = "event",
) -> JSONObject:
    """``{dataset: metrics on its clips and classes}`` (empty for a split of one fully annotated dataset with hard
    labels).

    ``probs``/``targets``/``labelled``: the split's event scores, frame targets and labelled rows as ``SplitScores``
    holds them, row ``i`` for ``clip_ids[i]``; ``smooth``: the evaluation's post-processing of one clip's frame
    scores (median filter) before the DCASE metrics.
    """
    by_id = {clip.clip_id: clip for clip in clips}
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (len(labels),))
    out: JSONObject = {}
    groups = dataset_groups(clips, labels)
    if not groups and is_soft(clips):  # one soft-labelled dataset: its segment metrics all the same
        groups = {clips[0].dataset or "all": list(labels)} if clips else {}
    for name, classes in groups.items():
        columns = [list(labels).index(c) for c in classes]
        rows = [i for i, c in enumerate(clip_ids) if labelled[i] and (by_id[c].dataset or "all") == name]
        if not rows or not columns:
            continue
        members = [by_id[clip_ids[i]] for i in rows]
        metrics = TASK_DESCRIPTIONS[task].metrics(probs[rows][..., columns], targets[rows][..., columns], classes,
                                                  thresholds[columns])
        metrics = {"n_clips": len(rows), "classes": list(classes), **metrics}
        # The scores sed_scores_eval and the segment metrics see are post-processed (DESED_task 2024 too).
        smoothed = {clip_ids[i]: smooth(probs[i]) for i in rows}
        hard = ground_truth(members)
        durations = {clip.clip_id: clip.duration for clip in members}
        metrics.update(dcase_event_metrics({c: s[:, columns] for c, s in smoothed.items()}, hard, classes,
                                           hop_seconds, durations, thresholds[columns], psds=psds))
        if is_soft(members):
            metrics.update(soft_segment_metrics(members, smoothed, labels, classes, hop_seconds))
        out[name] = metrics
    return out
