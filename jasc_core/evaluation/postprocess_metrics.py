"""PSDS1 and PSDS2 of one split under each post-processing a run has, next to the metrics of its decisions.

``metrics.json`` keeps ``event.psds1``/``event.psds2`` as before (the scores the evaluation's decisions come from:
median-filtered by the recipe's or the run's tuned lengths) and adds, flattened as ``event/<key>``:

- ``psds1_raw``, ``psds2_raw``: the model's frame scores as they are;
- ``psds1_median``, ``psds2_median``: after the median filter, where one is configured or tuned (any class longer
  than one frame); ``median_filter_source`` says which (``median_filters.json`` or ``evaluate.postprocess``);
- ``psds1_sebb``, ``psds2_sebb``: the SEBBs of the run's ``sebb.json`` (its PSDS1-tuned set) on the raw scores, each
  box's confidence over its extent; and ``sebb_collar_f1``: collar-based F1 (micro, macro, per class) of the SEBB
  detections (its collar-F1-tuned set), the events the run's TSV and ``jasc predict`` report.

All on the classes with reference events in the split, as ``dcase_event_metrics`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jasc_core.contract.data import Event
from jasc_core.contract.json_types import JSONMapping, JSONObject
from jasc_core.evaluation.dcase import f1_summary, psds_values, score_dataframes
from jasc_core.evaluation.events import filtered_scores
from jasc_core.evaluation.sed_scores import import_sed_scores_eval
from jasc_core.inference.postprocess import filter_frames
from jasc_core.inference.sebb import box_score_frames, boxes, detections
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.runs.sebb_params import SebbParams


def has_median_filter(postprocess: PostprocessConfig, labels: Sequence[str], hop_seconds: float) -> bool:
    """True when the median filter changes some class's scores (a window longer than one frame)."""
    return bool(np.any(filter_frames(postprocess.median_filter, labels, hop_seconds) > 1))


def _keyed(values: JSONMapping, suffix: str) -> JSONObject:
    """``psds1`` -> ``psds1_<suffix>``, ``psds1_error`` -> ``psds1_<suffix>_error``."""
    out = {}
    for key, value in values.items():
        name, _, error = key.partition("_")
        out[f"{name}_{suffix}" + (f"_{error}" if error else "")] = value
    return out


def sebb_detections(raw: Mapping[str, np.ndarray], labels: Sequence[str], hop_seconds: float,
                    durations: Mapping[str, float], params: SebbParams) -> dict[str, list[Event]]:
    """Each clip's SEBB detections on all ``labels`` (``params``: the collar-F1-tuned set, with thresholds)."""
    frames = score_dataframes(raw, labels, hop_seconds, durations)
    return detections(boxes(frames, labels, params), params.detection_threshold or {})


def sebb_collar_f1(events: Mapping[str, Sequence[Event]], truth: Mapping[str, list], present: Sequence[str],
                   durations: Mapping[str, float]) -> JSONObject:
    """Collar-based F1 of event lists (binary scores from the events, as the sebbs authors score detections)."""
    sse = import_sed_scores_eval()
    clip_ids = [c for c in truth if c in events]
    hits = {c: [(e.onset, e.offset, e.label, 1.0) for e in events[c] if e.label in present] for c in clip_ids}
    extra = sum(1 for c in clip_ids for e in events[c] if e.label not in present)
    # Detections score 1, the rest 0 (not -inf: sed_scores_eval 0.0.4's F1 at a threshold fails on a class whose
    # scores are all -inf, i.e. a class with no detection).
    frames = box_score_frames(hits, present, durations, fill_value=0.0)
    _, _, _, stats = sse.collar_based.fscore(frames, {c: truth[c] for c in clip_ids}, 0.5,
                                             onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2)
    return f1_summary(stats, present, extra)


def psds_by_postprocess(raw: Mapping[str, np.ndarray], truth: Mapping[str, list], labels: Sequence[str],
                        hop_seconds: float, durations: Mapping[str, float], postprocess: PostprocessConfig,
                        sebb: Mapping[str, SebbParams] | None = None) -> JSONObject:
    """PSDS1/PSDS2 of the raw, the median-filtered and the SEBB scores (the module docstring's keys)."""
    clip_ids = [c for c in truth if c in raw]
    truth = {c: list(truth[c]) for c in clip_ids}
    present = [c for c in labels if any(e[2] == c for events in truth.values() for e in events)]
    if not present:
        return {}
    columns = [list(labels).index(c) for c in present]
    durs = {c: float(durations[c]) for c in clip_ids}
    raw_present = {c: np.asarray(raw[c])[:, columns] for c in clip_ids}
    raw_frames = score_dataframes(raw_present, present, hop_seconds, durs)
    out = _keyed(psds_values(raw_frames, truth, durs), "raw")
    if has_median_filter(postprocess, labels, hop_seconds):
        smoothed = {c: filtered_scores(raw[c], labels, hop_seconds, postprocess)[:, columns] for c in clip_ids}
        out.update(_keyed(psds_values(score_dataframes(smoothed, present, hop_seconds, durs), truth, durs), "median"))
    if sebb is not None:
        found = boxes(raw_frames, present, sebb["psds"])
        out.update(_keyed(psds_values(box_score_frames(found, present, durs), truth, durs), "sebb"))
    return out
