"""A run's tuned per-class median filter lengths (``median_filters.json``): written by ``jasc postprocess tune``,
read by every later evaluation and ``jasc predict`` of the run, where they replace ``evaluate.postprocess``'s
``median_filter`` (the other post-processing settings stay the recipe's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from jasc_core.contract.json_types import JSONValue
from jasc_core.errors import RunError
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.runs.folder import open_run, read_json, write_json

FILE_NAME = "median_filters.json"


def stored_median_filters(run_dir: str | Path, labels: Sequence[str]) -> dict[str, float] | None:
    """Tuned per-class median filter lengths (seconds) of a run, or None; they must be for the run's event labels."""
    path = open_run(run_dir).root / FILE_NAME
    if not path.is_file():
        return None
    data = read_json(path)
    lengths = data.get("median_filter", {})
    if list(lengths) != list(labels):
        raise RunError(f"{path} was tuned for labels {list(lengths)}, the model has {list(labels)}")
    return {label: float(value) for label, value in lengths.items()}


def save_median_filters(run_dir: str | Path, lengths: Mapping[str, float], **info: JSONValue) -> Path:
    """Store tuned per-class median filter lengths (seconds) in the run folder; evaluation then uses them."""
    path = open_run(run_dir).root / FILE_NAME
    write_json(path, {"median_filter": {label: float(v) for label, v in lengths.items()}, **info})
    return path


def run_postprocess(run_dir: str | Path, labels: Sequence[str] | None, postprocess: PostprocessConfig) -> PostprocessConfig:
    """The recipe's post-processing with the run's tuned median filters where it has them."""
    tuned = stored_median_filters(run_dir, labels) if labels is not None else None
    return postprocess if tuned is None else postprocess.model_copy(update={"median_filter": tuned})
