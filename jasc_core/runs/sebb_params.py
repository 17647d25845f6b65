"""A run's tuned SEBB post-processing parameters (``sebb.json``): written by ``jasc postprocess tune --method sebb``,
read by every later evaluation and ``jasc predict`` of the run.

Sound event bounding boxes (cSEBBs; Ebbers, Germain, Wichern, Le Roux, Interspeech 2024) have three parameters per
class: the step filter length of the change-point detection (seconds), and the absolute and relative merge
thresholds of neighbouring candidates (``None`` here stands for infinity: that criterion does not restrict
merging; JSON has no infinity). Detections are the boxes whose confidence exceeds the class's detection threshold.

Two parameter sets are stored, as the ``sebbs`` package tunes them: ``psds`` (best PSDS1 per class; its boxes'
confidences are the scores PSDS is computed on) and ``cbf`` (best collar-based F1 per class, with the detection
thresholds that reach it; its detections are the run's event lists).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jasc_core.contract.json_types import JSONMapping, JSONObject, JSONValue
from jasc_core.errors import RunError
from jasc_core.runs.folder import open_run, read_json, write_json

FILE_NAME = "sebb.json"
#: The parameter sets of ``sebb.json``: what each was tuned for.
OBJECTIVES = ("psds", "cbf")


@dataclass(frozen=True)
class SebbParams:
    """Per-class cSEBB parameters; a merge threshold of ``math.inf`` does not restrict merging."""

    step_filter_length: dict[str, float]
    merge_threshold_abs: dict[str, float]
    merge_threshold_rel: dict[str, float]
    #: Per-class confidence thresholds of detections (None: boxes only, for threshold-free metrics).
    detection_threshold: dict[str, float] | None = None

    def to_json(self) -> JSONObject:
        def plain(values: Mapping[str, float]) -> dict[str, float | None]:
            return {label: None if math.isinf(v) else float(v) for label, v in values.items()}

        out: JSONObject = {"step_filter_length": plain(self.step_filter_length),
                               "merge_threshold_abs": plain(self.merge_threshold_abs),
                               "merge_threshold_rel": plain(self.merge_threshold_rel)}
        if self.detection_threshold is not None:
            out["detection_threshold"] = plain(self.detection_threshold)
        return out

    @classmethod
    def from_json(cls, data: JSONMapping) -> SebbParams:
        def values(key: str) -> dict[str, float]:
            return {label: math.inf if v is None else float(v) for label, v in data[key].items()}

        return cls(values("step_filter_length"), values("merge_threshold_abs"), values("merge_threshold_rel"),
                   values("detection_threshold") if data.get("detection_threshold") is not None else None)


def stored_sebb(run_dir: str | Path, labels: Sequence[str]) -> dict[str, SebbParams] | None:
    """The run's tuned SEBB parameter sets by objective (``psds``, ``cbf``), or None; they must be for ``labels``."""
    return read_sebb(open_run(run_dir).root / FILE_NAME, labels)


def read_sebb(path: Path, labels: Sequence[str]) -> dict[str, SebbParams] | None:
    """The SEBB parameter sets of a ``sebb.json`` (a run's, or the copy in an export folder), or None if absent."""
    if not path.is_file():
        return None
    data = read_json(path)
    try:
        params = {name: SebbParams.from_json(data[name]) for name in OBJECTIVES}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RunError(f"{path}: not a SEBB parameter file ({type(error).__name__}: {error})") from None
    for name, p in params.items():
        if list(p.step_filter_length) != list(labels):
            raise RunError(f"{path} ({name}) was tuned for labels {list(p.step_filter_length)}, "
                           f"the model has {list(labels)}")
    return params


def save_sebb(run_dir: str | Path, params: Mapping[str, SebbParams], **info: JSONValue) -> Path:
    """Store tuned SEBB parameter sets (``psds`` and ``cbf``) in the run folder (atomically)."""
    missing = [name for name in OBJECTIVES if name not in params]
    if missing:
        raise ValueError(f"SEBB parameters need the sets {list(OBJECTIVES)}; missing {missing}")
    path = open_run(run_dir).root / FILE_NAME
    write_json(path, {**{name: params[name].to_json() for name in OBJECTIVES}, **info})
    return path
