"""SEBB post-processing: frame scores -> sound event bounding boxes -> events, through the optional ``sebbs`` package.

Change-point-based SEBBs (cSEBBs; Ebbers et al., "Sound Event Bounding Boxes", Interspeech 2024): a step filter
finds candidate onsets and offsets in each class's frame scores, neighbouring candidates are merged where the gap
between them is shallow (absolute and relative merge thresholds), and each box gets one confidence, the mean score
inside it. Detections are the boxes above a per-class confidence threshold, so the threshold changes which events
are reported but never where they start or end. The parameters are a run's ``sebb.json``
(``jasc_core.runs.sebb_params``), tuned by ``jasc postprocess tune --method sebb``.

``sebbs`` 1.0.2 is an optional extra (``pip install 'jasc[sebb]'``); without it every SEBB call raises a one-line
``ConfigError`` naming it. The boxes are computed on the raw frame scores (no median filter), as its authors do for
DCASE 2024 Task 4.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.contract.data import Event
from jasc_core.errors import ConfigError
from jasc_core.inference.postprocess import TIME_DECIMALS
from jasc_core.inference.score_frames import score_frame
from jasc_core.runs.sebb_params import SebbParams

if TYPE_CHECKING:  # sebbs and pandas (sed_scores_eval's) are imported where boxes are made
    from pandas import DataFrame
    from sebbs.csebbs import CSEBBsPredictor

#: What to install, quoted in the error (docs/task4.md explains the sed_scores_eval step).
INSTALL_HINT = ("pip install 'jasc[sebb]' && pip install --force-reinstall --no-deps sed_scores_eval==0.0.4 "
                "(docs/task4.md, 'SEBB')")

#: One SEBB: ``(onset, offset, label, confidence)``.
Box = tuple[float, float, str, float]


def import_csebbs() -> ModuleType:
    """``sebbs.csebbs``, or a ConfigError naming the extra when the package is not installed."""
    try:
        with warnings.catch_warnings():
            # sed_scores_eval -> dcase_util imports pkg_resources, which setuptools 80 flags as deprecated.
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            from sebbs import csebbs
    except ModuleNotFoundError as error:
        if error.name != "sebbs":
            raise
        raise ConfigError(f"SEBB post-processing needs the optional package sebbs 1.0.2: {INSTALL_HINT}") from None
    return csebbs


def predictor(params: SebbParams, labels: Sequence[str]) -> CSEBBsPredictor:
    """A ``sebbs`` ``CSEBBsPredictor`` with the per-class parameters of ``labels``."""
    csebbs = import_csebbs()

    def per_class(values: Mapping[str, float]) -> dict[str, float]:
        return {label: float(values[label]) for label in labels}

    threshold = per_class(params.detection_threshold) if params.detection_threshold is not None else None
    return csebbs.CSEBBsPredictor(step_filter_length=per_class(params.step_filter_length),
                                  merge_threshold_abs=per_class(params.merge_threshold_abs),
                                  merge_threshold_rel=per_class(params.merge_threshold_rel),
                                  detection_threshold=threshold, sound_classes=list(labels))


def boxes(frames: Mapping[str, DataFrame], labels: Sequence[str], params: SebbParams) -> dict[str, list[Box]]:
    """SEBBs ``{clip_id: [(onset, offset, label, confidence), ...]}`` of score DataFrames ``{clip_id: frame}``."""
    found = predictor(params, labels).predict(dict(frames), sound_classes=list(labels))
    return {clip_id: [(float(on), float(off), str(label), float(conf)) for on, off, label, conf in clip_boxes]
            for clip_id, clip_boxes in found.items()}


def detections(found: Mapping[str, Sequence[Box]], thresholds: Mapping[str, float]) -> dict[str, list[Event]]:
    """The boxes whose confidence exceeds their class's threshold, as events sorted by onset then label."""
    out = {}
    for clip_id, clip_boxes in found.items():
        events = [Event(round(on, TIME_DECIMALS), round(off, TIME_DECIMALS), label)
                  for on, off, label, confidence in clip_boxes if confidence > thresholds[label]]
        out[clip_id] = sorted(events, key=lambda e: (e.onset, e.label, e.offset))
    return out


def sebb_events(scores: np.ndarray, labels: Sequence[str], hop_seconds: float, params: SebbParams,
                duration: float | None = None) -> list[Event]:
    """One clip's (or file's) events from its raw frame scores ``[T, classes]`` by SEBB detection (``params`` must
    hold detection thresholds: the ``cbf`` set)."""
    if params.detection_threshold is None:
        raise ConfigError("SEBB detection needs per-class detection thresholds (sebb.json's 'cbf' set)")
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(f"scores {scores.shape} must be [frames, {len(labels)} classes]")
    if len(scores) == 0:
        return []
    duration = len(scores) * hop_seconds if duration is None else duration
    found = boxes({"clip": score_frame(scores, labels, hop_seconds, duration)}, labels, params)
    return detections(found, params.detection_threshold)["clip"]


def box_score_frames(found: Mapping[str, Sequence[Box]], labels: Sequence[str], durations: Mapping[str, float],
                     fill_value: float = -math.inf) -> dict[str, DataFrame]:
    """Boxes as score DataFrames for threshold-free metrics (PSDS): each box's confidence over its extent,
    ``fill_value`` outside every box (``sebbs.utils.sed_scores_from_sebbs``)."""
    import_csebbs()
    from sebbs.utils import sed_scores_from_sebbs

    return {clip_id: sed_scores_from_sebbs(list(clip_boxes), list(labels), float(durations[clip_id]),
                                           fill_value=fill_value)
            for clip_id, clip_boxes in found.items()}
