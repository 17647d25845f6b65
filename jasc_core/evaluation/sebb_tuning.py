"""SEBB parameters tuned on a validation split with the ``sebbs`` package's own selection (``sebb.json``).

The grid is sebbs' (and DCASE 2024's): step filter lengths 0.32, 0.48, 0.64 s; each combined with either an absolute
merge threshold (0.15, 0.2, 0.3) or a relative one (1.5, 2, 3), the other left unrestricted (sebbs ``tune`` with
``either_abs_or_rel_threshold=True``). Every candidate's boxes are computed on the run's raw frame scores, then
sebbs picks per class:

- ``select_best_psds``: the candidate with the best single-class PSDS1 (dtc = gtc = 0.7, max eFPR 100/h);
- ``select_best_cbf``: the candidate and confidence threshold with the best collar-based F1 (onset collar 0.2 s,
  offset collar max(0.2 s, 20 % of the reference)).

The candidates are built here with sebbs' public ``CSEBBsPredictor`` rather than ``csebbs.tune``: in sebbs 1.0.2,
``tune`` makes its candidates without the class list, so they find no boxes and the selection fails on ``len(None)``.

A class without reference events in the split keeps ``CSEBBsPredictor``'s defaults (step 0.5 s, merge thresholds
1.0 absolute and 2.0 relative) and the run's decision threshold as its detection threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.contract.tasks import frame_level_task
from jasc_core.errors import RunError
from jasc_core.evaluation.dcase import PSDS_SETTINGS, score_dataframes
from jasc_core.evaluation.events import ground_truth
from jasc_core.evaluation.sed_scores import import_sed_scores_eval
from jasc_core.inference.scoring import score_split
from jasc_core.inference.sebb import Box, import_csebbs
from jasc_core.runs.sebb_params import SebbParams, save_sebb
from jasc_core.runs.thresholds import stored_thresholds

if TYPE_CHECKING:  # sebbs and pandas (sed_scores_eval's) are imported where SEBBs are tuned
    from pandas import DataFrame
    from sebbs.csebbs import CSEBBsPredictor

#: One grid point: a predictor and its boxes by clip; a selection: the chosen predictor and its value by class.
Candidate = tuple["CSEBBsPredictor", dict[str, list[Box]]]
Selection = tuple["CSEBBsPredictor", dict[str, float]]

STEP_FILTER_LENGTHS = (0.32, 0.48, 0.64)
MERGE_THRESHOLDS_ABS = (0.15, 0.2, 0.3)
MERGE_THRESHOLDS_REL = (1.5, 2.0, 3.0)
#: ``CSEBBsPredictor``'s defaults, kept by classes the split cannot tune.
DEFAULTS = {"step_filter_length": 0.5, "merge_threshold_abs": 1.0, "merge_threshold_rel": 2.0}
#: Collar-based F1 of DCASE Task 4 (``jasc_core.evaluation.dcase``).
COLLARS = {"onset_collar": 0.2, "offset_collar": 0.2, "offset_collar_rate": 0.2}


def candidates(frames: dict[str, DataFrame], classes: Sequence[str], step_filter_lengths: Sequence[float],
               merge_thresholds_abs: Sequence[float], merge_thresholds_rel: Sequence[float]) -> list[Candidate]:
    """``[(CSEBBsPredictor, its boxes by clip)]`` over the grid (either an absolute or a relative merge threshold)."""
    csebbs = import_csebbs()
    merges = [(a, math.inf) for a in merge_thresholds_abs] + [(math.inf, r) for r in merge_thresholds_rel]
    out = []
    for step in step_filter_lengths:
        for merge_abs, merge_rel in merges:
            predictor = csebbs.CSEBBsPredictor(step_filter_length=float(step), merge_threshold_abs=merge_abs,
                                               merge_threshold_rel=merge_rel, sound_classes=list(classes))
            out.append((predictor, predictor.predict(frames, sound_classes=list(classes))))
    return out


def select(found: list[Candidate], truth: dict[str, list], durations: dict[str, float]) -> dict[str, Selection]:
    """sebbs' per-class selections: ``{"psds": (predictor, PSDS1 by class), "cbf": (predictor, F1 by class)}``."""
    csebbs = import_csebbs()
    psds1 = {k: v for k, v in PSDS_SETTINGS["psds1"].items() if k != "alpha_st"}  # alpha_st: single classes only
    return {"psds": csebbs.select_best_psds(found, truth, durations, classwise=True, unit_of_time="hour", **psds1),
            "cbf": csebbs.select_best_cbf(found, truth, durations, classwise=True, **COLLARS)}


def _params(predictor: CSEBBsPredictor, classes: Sequence[str], tuned: Sequence[str],
            thresholds: np.ndarray) -> SebbParams:
    """All classes' parameters: the selection's for the tuned classes, the defaults for the others."""
    def values(name: str) -> dict[str, float]:
        chosen = getattr(predictor, name)
        return {c: float(chosen[c]) if c in tuned else DEFAULTS[name] for c in classes}

    detection = None
    if predictor.detection_threshold is not None:
        detection = {c: float(predictor.detection_threshold[c]) if c in tuned else float(thresholds[i])
                     for i, c in enumerate(classes)}
    return SebbParams(values("step_filter_length"), values("merge_threshold_abs"), values("merge_threshold_rel"),
                      detection)


def tune_sebb(run_dir: str | Path, split: str = "val", *, step_filter_lengths: Sequence[float] = STEP_FILTER_LENGTHS,
              merge_thresholds_abs: Sequence[float] = MERGE_THRESHOLDS_ABS,
              merge_thresholds_rel: Sequence[float] = MERGE_THRESHOLDS_REL) -> dict[str, SebbParams]:
    """Choose and store the run's SEBB parameters on ``split`` (see the module docstring)."""
    import_csebbs()  # the extra's error before any scoring
    import_sed_scores_eval()
    scores, (recipe, _, labels, clips) = score_split(run_dir, split)
    task = frame_level_task(scores.probs)
    truth = {c: events for c, events in ground_truth(clips).items() if c in set(scores.clip_ids)}
    if task is None or not truth:
        raise RunError(f"cannot tune SEBBs: the model has no event head or split '{split}' has no events")
    classes = list(labels[task])
    present = [c for c in classes if any(e[2] == c for events in truth.values() for e in events)]
    if not present:
        raise RunError(f"cannot tune SEBBs: split '{split}' has no reference events")
    columns = [classes.index(c) for c in present]
    durations = {clip.clip_id: float(clip.duration) for clip in clips if clip.clip_id in truth}
    raw = {c: p[:, columns] for c, p in zip(scores.clip_ids, scores.probs[task], strict=True) if c in truth}
    frames = score_dataframes(raw, present, scores.hop_seconds, durations)
    chosen = select(candidates(frames, present, step_filter_lengths, merge_thresholds_abs, merge_thresholds_rel),
                    truth, durations)
    tuned_thresholds = stored_thresholds(run_dir, classes)
    thresholds = np.broadcast_to(tuned_thresholds if tuned_thresholds is not None
                                 else float(recipe.evaluate.threshold), (len(classes),))
    params = {name: _params(predictor, classes, present, thresholds) for name, (predictor, _) in chosen.items()}
    save_sebb(run_dir, params, split=split, scores="raw frame scores (no median filter)",
              grid={"step_filter_length": list(step_filter_lengths), "merge_threshold_abs": list(merge_thresholds_abs),
                    "merge_threshold_rel": list(merge_thresholds_rel)},
              criteria={"psds": "per-class PSDS1 (dtc = gtc = 0.7, max eFPR 100/h), sebbs select_best_psds",
                        "cbf": "per-class collar-based F1 (0.2 s; offset max(0.2 s, 20 %)), sebbs select_best_cbf"},
              validation={name: {c: float(v) for c, v in values.items()} for name, (_, values) in chosen.items()})
    return params
