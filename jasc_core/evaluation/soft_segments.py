"""Segment-based metrics on soft references (MAESTRO Real), as the DCASE 2024 Task 4 baseline computes them.

MAESTRO Real's annotations are soft: per 1-s segment, the share of annotators who heard the class (in [0, 1]). Its
metrics, as DESED_task's 2024 baseline evaluates them (``recipes/dcase2024_task4_baseline``, read for this):

- scores: a window's frame scores become 1-s segment scores by the time-weighted mean of the frames overlapping each
  segment; windows of a long recording are overlap-added: each segment's score is the mean over the windows that
  cover it (``window_segment_scores``, ``overlap_add``);
- reference: a segment is active for a class when its soft label is above 0.5 (``binary_reference``);
- mean pAUC: per class, the area under the segment-based ROC curve up to a false positive rate of 0.1, divided by
  0.1 (no McClish correction), computed by ``sed_scores_eval.segment_based.auroc(max_fpr=0.1)``; the mean over
  classes (``segment_pauc``);
- F1 and error rate at a 0.5 threshold on 1-s segments (MAESTRO's authors, DCASE 2023 Task 4B: micro-averaged F1 and
  ER over segments, Mesaros et al. 2016: S = min(FN, FP), D = max(0, FN - FP), I = max(0, FP - FN) per segment,
  ER = sum(S + D + I) / sum(N)), plus the macro F1 (``segment_f1_er``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from jasc_core.contract.data import Event
from jasc_core.evaluation.sed_scores import import_sed_scores_eval
from jasc_core.evaluation.segments import TIME_DECIMALS


def n_segments(duration: float, segment_seconds: float = 1.0) -> int:
    return math.ceil(round(duration / segment_seconds, TIME_DECIMALS))


def window_segment_scores(frames: np.ndarray, hop_seconds: float, duration: float,
                          segment_seconds: float = 1.0) -> np.ndarray:
    """Frame scores ``[T, M]`` (frame ``t`` spans ``[t*hop, (t+1)*hop)``) of a window of ``duration`` seconds ->
    segment scores ``[S, M]``: per segment, the mean of the frames weighted by how long each overlaps it."""
    frames = np.asarray(frames, dtype=np.float64)
    starts = np.arange(len(frames)) * hop_seconds
    ends = np.minimum(starts + hop_seconds, duration)
    out = np.zeros((n_segments(duration, segment_seconds), frames.shape[1]))
    for s in range(len(out)):
        lo, hi = s * segment_seconds, min((s + 1) * segment_seconds, duration)
        weights = np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0.0, None)
        if weights.sum() > 0:
            out[s] = weights @ frames / weights.sum()
    return out


def overlap_add(windows: Sequence[tuple[float, np.ndarray]], duration: float, segment_seconds: float = 1.0) -> np.ndarray:
    """Segment scores of a whole recording from its windows ``(offset seconds, [S_w, M] segment scores)``: each
    segment's score is the mean over the windows covering it (0 where none does). Offsets are whole segments."""
    total = np.zeros((n_segments(duration, segment_seconds), windows[0][1].shape[1]))
    count = np.zeros(len(total))
    for offset, scores in windows:
        first = round(offset / segment_seconds)
        if abs(first * segment_seconds - offset) > 1e-6:
            raise ValueError(f"window offset {offset} s is not a multiple of the {segment_seconds}-s segment")
        last = min(len(total), first + len(scores))
        total[first:last] += scores[: last - first]
        count[first:last] += 1
    return total / np.maximum(count, 1)[:, None]


def soft_reference(events: Sequence[Event], labels: Sequence[str], duration: float,
                   segment_seconds: float = 1.0) -> np.ndarray:
    """``[S, M]`` soft reference: per segment and class, the highest strength of the events overlapping it."""
    column = {label: i for i, label in enumerate(labels)}
    out = np.zeros((n_segments(duration, segment_seconds), len(labels)))
    starts = np.arange(len(out)) * segment_seconds
    for event in events:
        if event.label not in column:
            continue
        active = (starts < event.offset - 1e-6) & (starts + segment_seconds > event.onset + 1e-6)
        out[active, column[event.label]] = np.maximum(out[active, column[event.label]], event.strength)
    return out


def binary_reference(soft: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Segments whose soft label is above ``threshold`` (DESED_task 2024: ``confidence > 0.5``)."""
    return np.asarray(soft) > threshold


def segment_pauc(scores: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], labels: Sequence[str],
                 segment_seconds: float = 1.0, max_fpr: float = 0.1) -> dict[str, float]:
    """Per-class and ``mean`` segment-based partial AUC up to ``max_fpr`` (normalised by it), through
    sed_scores_eval as the 2024 baseline calls it. ``scores`` / ``reference``: ``[S, M]`` per recording (segment
    scores, binary reference); a class with no active reference segment is left out of the mean (its TPR is
    undefined)."""
    sse = import_sed_scores_eval()
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    frames, truth, durations = {}, {}, {}
    for file_id, seg in scores.items():
        duration = len(seg) * segment_seconds
        stamps = np.arange(len(seg) + 1) * segment_seconds
        frames[file_id] = create_score_dataframe(np.asarray(seg, dtype=np.float64), stamps, list(labels))
        truth[file_id] = active_runs(np.asarray(reference[file_id], dtype=bool), labels, segment_seconds)
        durations[file_id] = duration
    present = [label for m, label in enumerate(labels)
               if any(np.asarray(reference[f], dtype=bool)[:, m].any() for f in reference)]
    if not present:
        return {"mean": float("nan")}
    keep = ["onset", "offset", *present]
    frames = {f: df[keep] for f, df in frames.items()}
    truth = {f: [e for e in events if e[2] in present] for f, events in truth.items()}
    per_class, _ = sse.segment_based.auroc(frames, truth, durations, segment_length=segment_seconds,
                                            max_fpr=max_fpr)
    return {str(k): float(v) for k, v in per_class.items()}


def active_runs(active: np.ndarray, labels: Sequence[str], segment_seconds: float) -> list[tuple[float, float, str]]:
    """Reference events from ``[S, M]`` active segments: each run of consecutive active segments one event
    (sed_scores_eval refuses touching events of one class)."""
    events = []
    for m, label in enumerate(labels):
        padded = np.concatenate([[False], active[:, m], [False]]).astype(int)
        starts, stops = np.flatnonzero(np.diff(padded) == 1), np.flatnonzero(np.diff(padded) == -1)
        events += [(float(a * segment_seconds), float(b * segment_seconds), label) for a, b in zip(starts, stops,
                                                                                                   strict=True)]
    return events


def segment_f1_er(scores: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], labels: Sequence[str],
                  threshold: float = 0.5) -> dict[str, float]:
    """Segment-based micro F1, macro F1 and error rate of ``scores > threshold`` against the binary reference."""
    detected = np.concatenate([np.asarray(scores[f]) > threshold for f in scores])
    truth = np.concatenate([np.asarray(reference[f], dtype=bool) for f in scores])
    tp = (detected & truth).sum(0)
    fp = (detected & ~truth).sum(0)
    fn = (~detected & truth).sum(0)
    fn_seg = (~detected & truth).sum(1)
    fp_seg = (detected & ~truth).sum(1)
    n_ref = truth.sum()
    errors = np.minimum(fn_seg, fp_seg) + np.maximum(0, fn_seg - fp_seg) + np.maximum(0, fp_seg - fn_seg)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    per_class = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return {"segment_micro_f1": float(micro), "segment_macro_f1": float(per_class.mean()) if len(labels) else 0.0,
            "segment_error_rate": float(errors.sum() / n_ref) if n_ref else float("nan"),
            **{f"segment_f1/{label}": float(per_class[m]) for m, label in enumerate(labels)}}
