"""Predictions on audio files of any length from a trained run: ``jasc predict`` and ``jasc.load`` use this.

``Predictor`` holds a run's pipeline (student or an extra model such as the EMA teacher), its labels, the event
thresholds (the run's tuned ``thresholds.json`` when present, else ``evaluate.threshold``), the run's tuned median
filters (``median_filters.json``) when present, and the recipe's post-processing; with the run's tuned SEBB
parameters (``sebb.json``) its events are SEBB detections instead. Files are read by ``jasc_core.data.audio`` (any
rate, any channel count) and scored window by window (``jasc_core.inference.windows``: scene probabilities
averaged, frame scores stitched before post-processing).

The window is the model's training clip: ``data.clip_seconds`` when the dataset config states it, else 10 s (the
convention of ``jasc profile``); ``window_seconds`` overrides it. The default hop is half a window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from jasc_core.contract.components import FeatureExtractor
from jasc_core.contract.tasks import TASK_DESCRIPTIONS, frame_level_task, task_of
from jasc_core.inference.file_predictor import FilePredictor
from jasc_core.inference.scoring import load_trained
from jasc_core.inference.windows import FrameGrid
from jasc_core.model.pipeline import Labels, Pipeline
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.runs.median_filters import run_postprocess
from jasc_core.runs.sebb_params import SebbParams, stored_sebb
from jasc_core.runs.thresholds import stored_thresholds

#: Window length when the dataset config states no clip length (as ``jasc profile``).
DEFAULT_WINDOW_SECONDS = 10.0


def run_thresholds(run_dir: str | Path, labels: Sequence[str], default: float) -> tuple[np.ndarray | float, str]:
    """The run's tuned per-class thresholds (``thresholds.json``) or ``default``, and where they came from."""
    tuned = stored_thresholds(run_dir, labels)
    return (float(default), "evaluate.threshold") if tuned is None else (tuned, "thresholds.json")


#: The first frame-level task of a model (``jasc_core.contract.tasks.frame_level_task``).
event_task = frame_level_task


def task_thresholds(run_dir: str | Path, tasks: Sequence[str], labels: Labels,
                    default: float) -> tuple[dict[str, np.ndarray | float], str]:
    """Thresholds by task: the run's tuned ones for the first frame-level task, ``default`` for the others."""
    thresholds: dict[str, np.ndarray | float] = {task: float(default) for task in tasks}
    source = "evaluate.threshold"
    tuned = frame_level_task(tasks)
    if tuned is not None:
        thresholds[tuned], source = run_thresholds(run_dir, labels[tuned], default)
    return thresholds, source


def frame_hop_samples(features: FeatureExtractor) -> int:
    """The features' frame hop in samples (``hop_length`` of log-mel, else from ``hop_seconds``)."""
    return int(getattr(features, "hop_length", 0) or round(features.hop_seconds * features.sample_rate))


def run_event_postprocessing(run_dir: str | Path, postprocess: PostprocessConfig, tasks: Sequence[str],
                             labels: Labels) -> tuple[PostprocessConfig, dict[str, SebbParams] | None]:
    """What turns a run's frame scores into events: the recipe's ``postprocess`` with the run's tuned median filters
    (``median_filters.json``), and its tuned SEBB parameter sets (``sebb.json``, which replace both where present).
    ``jasc predict RUN`` applies them and ``jasc export`` carries them, so both find the same events."""
    task = frame_level_task(tasks)
    if task is None:
        return postprocess, None
    return run_postprocess(run_dir, labels[task], postprocess), stored_sebb(run_dir, labels[task])


class Predictor(FilePredictor):
    """A run's trained pipeline ready for files and waveforms: ``predict`` (labels and events), ``scores`` (raw)."""

    def __init__(self, pipeline: Pipeline, labels: Labels, *, thresholds: Mapping[str, np.ndarray | float] | np.ndarray | float,
                 postprocess: PostprocessConfig | None, window_seconds: float, hop_seconds: float | None = None,
                 batch_size: int = 16) -> None:
        features = pipeline.features
        grid = FrameGrid(int(features.sample_rate), frame_hop_samples(features), features.num_frames)
        tasks = {task: TASK_DESCRIPTIONS[task].outputs() for task in pipeline.tasks}
        super().__init__(grid=grid, tasks=tasks, labels=labels, thresholds=thresholds, postprocess=postprocess,
                         window_seconds=window_seconds, hop_seconds=hop_seconds, batch_size=batch_size)
        self.pipeline = pipeline.eval()
        self.device = next(iter(pipeline.parameters())).device

    @classmethod
    def from_run(cls, run_dir: str | Path, *, model: str = "student", window_seconds: float | None = None,
                 hop_seconds: float | None = None, device: str = "cpu") -> Predictor:
        """The run's model (``student`` or an extra model such as ``teacher``) with its thresholds."""
        recipe, pipeline, labels = load_trained(run_dir, device=device, model=model)
        thresholds, _ = task_thresholds(run_dir, pipeline.tasks, labels, recipe.evaluate.threshold)
        window = window_seconds or float(getattr(recipe.data, "clip_seconds", None) or DEFAULT_WINDOW_SECONDS)
        postprocess, sebb = run_event_postprocessing(run_dir, recipe.evaluate.postprocess, pipeline.tasks, labels)
        predictor = cls(pipeline, labels, thresholds=thresholds, postprocess=postprocess,
                        window_seconds=window, hop_seconds=hop_seconds)
        if sebb is not None:  # the run's tuned SEBBs replace median filter and thresholds for its events
            predictor.sebb = sebb["cbf"]
        return predictor

    def score_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Windows ``[B, S]`` -> probabilities by output name (the ``Scorer`` of ``score_windows``)."""
        with torch.no_grad():
            outputs = self.pipeline(torch.from_numpy(batch).to(self.device))
        return {name: TASK_DESCRIPTIONS[task_of(name)].output_probabilities(name, logits).float().cpu().numpy()
                for name, logits in outputs.items()}

    def waveform(self, source: str | Path | npt.ArrayLike | torch.Tensor, sample_rate: int | None = None) -> np.ndarray:
        if isinstance(source, torch.Tensor):
            source = source.detach().cpu().numpy()
        return super().waveform(source, sample_rate)
