"""DCASE-style event metrics through sed_scores_eval 0.0.4 (see ``sed_scores`` for the import shims).

* segment-based F1 on 1-s segments at the decision threshold(s);
* collar-based (event-based) F1: onset collar 200 ms, offset collar max(200 ms, 20 % of the reference length);
* PSDS1 and PSDS2 with the DCASE 2023 Task 4 settings (threshold-independent):
  PSDS1 dtc 0.7, gtc 0.7, alpha_ct 0, alpha_st 1, max_efpr 100/h; PSDS2 dtc 0.1, gtc 0.1, cttc 0.3, alpha_ct 0.5,
  alpha_st 1, max_efpr 100/h. On clips much shorter than an hour of audio PSDS is noisy; it is reported as computed.

Scores are per-frame probabilities; frame ``t`` spans ``[t*hop, (t+1)*hop)``, the last frame ending at the clip's
duration at most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.contract.json_types import JSONObject
from jasc_core.evaluation.sed_scores import import_sed_scores_eval
from jasc_core.evaluation.segments import frames_in_clip
from jasc_core.inference.postprocess import frame_runs
from jasc_core.inference.score_frames import score_frame

if TYPE_CHECKING:  # pandas comes with sed_scores_eval, imported where frames are made
    from pandas import DataFrame

PSDS_SETTINGS: dict[str, dict[str, float | None]] = {
    "psds1": {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "cttc_threshold": None, "alpha_ct": 0.0, "alpha_st": 1.0,
              "max_efpr": 100.0},
    "psds2": {"dtc_threshold": 0.1, "gtc_threshold": 0.1, "cttc_threshold": 0.3, "alpha_ct": 0.5, "alpha_st": 1.0,
              "max_efpr": 100.0},
}


def score_dataframes(
    scores: Mapping[str, np.ndarray], labels: Sequence[str], hop_seconds: float, durations: Mapping[str, float]
) -> dict[str, DataFrame]:
    """``{clip_id: DataFrame}`` in sed_scores_eval's format from frame scores ``[T, classes]``."""
    return {clip_id: score_frame(clip_scores, labels, hop_seconds, durations[clip_id])
            for clip_id, clip_scores in scores.items()}


def dcase_event_metrics(
    scores: Mapping[str, np.ndarray],
    truth: Mapping[str, list[tuple[float, float, str]]],
    labels: Sequence[str],
    hop_seconds: float,
    durations: Mapping[str, float],
    threshold: float | np.ndarray = 0.5,
    *,
    psds: bool = True,
) -> JSONObject:
    """Segment-based and collar-based F1 (micro, macro, per class) and PSDS1/2 of the clips in ``truth``.

    sed_scores_eval refuses classes without reference events in the evaluated clips. Those classes are left out of
    its computation and listed in ``classes_without_reference``; their false alarms (detected 1-s segments,
    detected events) are still added to the micro averages, and the macro averages are over the classes that have
    reference events (there a class without references has no defined F).
    """
    sse = import_sed_scores_eval()
    clip_ids = [clip_id for clip_id in truth if clip_id in scores]
    truth = {c: list(truth[c]) for c in clip_ids}
    present = sorted({event[2] for events in truth.values() for event in events}, key=list(labels).index)
    absent = [label for label in labels if label not in present]
    results: JSONObject = {"classes_without_reference": absent}
    if not present:
        return results
    columns = [list(labels).index(label) for label in present]
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (len(labels),))
    frames = score_dataframes(
        {c: np.asarray(scores[c])[:, columns] for c in clip_ids}, present, hop_seconds, durations
    )
    durs = {c: float(durations[c]) for c in clip_ids}
    thr = {label: float(thresholds[i]) for label, i in zip(present, columns, strict=True)}
    extra_segments, extra_events = _absent_class_detections(
        {c: scores[c] for c in clip_ids}, labels, absent, thresholds, hop_seconds, durs
    )
    _, _, _, stats = sse.segment_based.fscore(frames, truth, durs, thr, segment_length=1.0)
    results["segment_f1"] = f1_summary(stats, present, extra_segments)
    _, _, _, stats = sse.collar_based.fscore(
        frames, truth, thr, onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2
    )
    results["collar_f1"] = f1_summary(stats, present, extra_events)
    if psds:
        results.update(psds_values(frames, truth, durs))
    return results


def psds_values(frames: Mapping[str, DataFrame], truth: Mapping[str, list],
                durations: Mapping[str, float]) -> JSONObject:
    """``{"psds1": ..., "psds2": ...}`` of score DataFrames; a PSDS sed_scores_eval cannot compute is None, with its
    error under ``<name>_error`` (the other metrics are kept)."""
    sse = import_sed_scores_eval()
    results: JSONObject = {}
    for name, settings in PSDS_SETTINGS.items():
        try:
            value = sse.intersection_based.psds(dict(frames), dict(truth), dict(durations), unit_of_time="hour",
                                                **settings)[0]
            results[name] = float(value)
        except Exception as exc:  # keep the other metrics
            results[name] = None
            results[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
    return results


def _absent_class_detections(
    scores: Mapping[str, np.ndarray], labels: Sequence[str], absent: Sequence[str], thresholds: np.ndarray,
    hop_seconds: float, durations: Mapping[str, float],
) -> tuple[int, int]:
    """False alarms of classes without references: detected 1-s segments and detected events (runs)."""
    if not absent:
        return 0, 0

    columns = [list(labels).index(label) for label in absent]
    segments = events = 0
    for clip_id, clip_scores in scores.items():
        clip_scores = np.asarray(clip_scores)
        n_frames = frames_in_clip(len(clip_scores), durations[clip_id], hop_seconds)
        decisions = clip_scores[:n_frames, columns] > thresholds[columns]
        classes, starts, stops = frame_runs(decisions)
        events += len(starts)
        n_segments = int(np.ceil(durations[clip_id] - 1e-9))
        for k in range(len(columns)):
            hit = set()
            for start, stop in zip(starts[classes == k], stops[classes == k], strict=True):
                onset, offset = start * hop_seconds, min(stop * hop_seconds, durations[clip_id])
                hit.update(range(int(np.floor(onset)), min(n_segments, int(np.ceil(offset - 1e-9)))))
            segments += len(hit)
    return segments, events


def f1_summary(stats: Mapping[str, Mapping[str, float]], labels: Sequence[str],
               extra_false_alarms: int = 0) -> JSONObject:
    """Micro, macro and per-class F1 of sed_scores_eval's per-class counts; ``extra_false_alarms`` (detections of
    classes without references) count in the micro average only."""
    per_class = {}
    tps = fps = n_ref = 0.0
    for label in labels:
        tp, fp, ref = (float(stats[label][key]) for key in ("tps", "fps", "n_ref"))
        per_class[label] = 2 * tp / (tp + fp + ref) if tp + fp + ref > 0 else 0.0
        tps, fps, n_ref = tps + tp, fps + fp, n_ref + ref
    fps += extra_false_alarms
    return {
        "micro": 2 * tps / (tps + fps + n_ref) if tps + fps + n_ref > 0 else 0.0,
        "macro": float(np.mean(list(per_class.values()))) if per_class else 0.0,
        "per_class": per_class,
        "counts": {"tp": int(tps), "fp": int(fps), "n_ref": int(n_ref)},
    }
