"""Predictions on audio files of any length from a trained run: ``jasc predict`` and ``jasc.load`` use this.

``Predictor`` holds a run's pipeline (student or an extra model such as the EMA teacher), its labels, the event
thresholds (the run's tuned ``thresholds.json`` when present, else ``evaluate.threshold``) and the recipe's
post-processing. Files are read by ``jasc_core.inference.audio`` (any rate, any channel count) and scored window by
window (``jasc_core.inference.windows``: scene probabilities averaged, frame scores stitched before post-processing).

The window is the model's training clip: ``data.clip_seconds`` when the dataset config states it, else 10 s (the
convention of ``jasc profile``); ``window_seconds`` overrides it. The default hop is half a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.errors import ConfigError, DataError, RunError
from jasc_core.inference.audio import prepare_waveform, read_audio
from jasc_core.inference.pipeline import Labels, Pipeline
from jasc_core.inference.postprocess import scores_to_events
from jasc_core.inference.runs import open_run, read_json
from jasc_core.inference.scoring import load_trained
from jasc_core.inference.windows import FileScores, FrameGrid, file_result, score_windows

#: Window length when the dataset config states no clip length (as ``jasc profile``).
DEFAULT_WINDOW_SECONDS = 10.0


def run_thresholds(run_dir: str | Path, labels: Sequence[str], default: float) -> tuple[np.ndarray | float, str]:
    """The run's tuned per-class thresholds (``thresholds.json``) or ``default``, and where they came from."""
    run = open_run(run_dir)
    if not run.thresholds.is_file():
        return float(default), "evaluate.threshold"
    data = read_json(run.thresholds)
    if list(data.get("labels", [])) != list(labels):
        raise RunError(f"{run.thresholds} was tuned for labels {data.get('labels')}, the model has {list(labels)}")
    return np.asarray(data["thresholds"], dtype=float), "thresholds.json"


def event_task(tasks: Iterable[str]) -> str | None:
    return next((task for task in tasks if TASK_DESCRIPTIONS[task].frame_level), None)


class Predictor:
    """A trained pipeline ready for files and waveforms: ``predict`` (labels and events) and ``scores`` (raw)."""

    def __init__(self, pipeline: Pipeline, labels: Labels, *, thresholds: np.ndarray | float, postprocess: Any,
                 window_seconds: float, hop_seconds: float | None = None, batch_size: int = 16) -> None:
        if window_seconds <= 0 or (hop_seconds is not None and hop_seconds <= 0):
            raise ConfigError(f"window {window_seconds} s and hop {hop_seconds} s must be positive")
        self.pipeline = pipeline.eval()
        self.labels = labels
        self.thresholds = thresholds
        self.postprocess = postprocess
        self.window_seconds = float(window_seconds)
        self.hop_seconds = float(hop_seconds) if hop_seconds is not None else self.window_seconds / 2
        self.batch_size = batch_size
        features = pipeline.features
        self.sample_rate = int(features.sample_rate)
        frame_hop = int(getattr(features, "hop_length", 0) or getattr(features, "hop", 0)
                        or round(features.hop_seconds * self.sample_rate))
        self.grid = FrameGrid(self.sample_rate, frame_hop, features.num_frames)
        self.device = next(iter(pipeline.parameters())).device

    @classmethod
    def from_run(cls, run_dir: str | Path, *, model: str = "student", window_seconds: float | None = None,
                 hop_seconds: float | None = None, device: str = "cpu") -> Predictor:
        """The run's model (``student`` or an extra model such as ``teacher``) with its thresholds."""
        recipe, pipeline, labels = load_trained(run_dir, device=device, model=model)
        task = event_task(pipeline.tasks)
        thresholds: np.ndarray | float = float(recipe.evaluate.threshold)
        if task is not None:
            thresholds, _ = run_thresholds(run_dir, labels[task], recipe.evaluate.threshold)
        window = window_seconds or float(getattr(recipe.data, "clip_seconds", None) or DEFAULT_WINDOW_SECONDS)
        return cls(pipeline, labels, thresholds=thresholds, postprocess=recipe.evaluate.postprocess,
                   window_seconds=window, hop_seconds=hop_seconds)

    def score_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Windows ``[B, S]`` -> probabilities by output name (the ``Scorer`` of ``score_windows``)."""
        with torch.no_grad():
            outputs = self.pipeline(torch.from_numpy(batch).to(self.device))
        probs = {}
        for name, logits in outputs.items():
            task = name.split("/")[0]
            description = TASK_DESCRIPTIONS[task]
            # Clip outputs of an event head are logits of independent classes, like its frames (sigmoid).
            probs[name] = (description.probabilities(logits) if name == task else torch.sigmoid(logits)).float()
        return {name: p.cpu().numpy() for name, p in probs.items()}

    def waveform(self, source: str | Path | np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """A file path or an in-memory waveform (``sample_rate`` required) as mono at the model's rate."""
        if isinstance(source, (str, Path)):
            return read_audio(source, self.sample_rate)
        if sample_rate is None:
            raise DataError("a waveform needs its sample_rate (predict(waveform, sample_rate=...))")
        array = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
        if array.ndim == 2 and array.shape[0] < array.shape[1]:
            array = array.T  # [channels, samples] (torch's layout) -> [samples, channels]
        return prepare_waveform(array, sample_rate, self.sample_rate)

    def scores(self, source: str | Path | np.ndarray, sample_rate: int | None = None) -> FileScores:
        """Raw scores: scene probabilities averaged over windows, stitched frame probabilities, clip scores."""
        waveform = self.waveform(source, sample_rate)
        return score_windows(waveform, self.score_batch, self.grid, self.window_seconds, self.hop_seconds,
                             self.batch_size)

    def to_events(self, frame_scores: np.ndarray, labels: Sequence[str], hop: float, thresholds: Any) -> list:
        return scores_to_events(frame_scores, labels, hop, thresholds, self.postprocess)

    def predict(self, source: str | Path | np.ndarray, sample_rate: int | None = None) -> dict[str, Any]:
        """Scene label and probabilities, and events (onset, offset, label, peak score) of one file or waveform."""
        name = str(source) if isinstance(source, (str, Path)) else "waveform"
        return file_result(name, self.scores(source, sample_rate), self.labels, self.thresholds, self.to_events)
