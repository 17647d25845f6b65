"""What every predictor of files does once its model scores a batch of windows (no torch here).

``FilePredictor`` turns a path or an in-memory waveform into mono at the model's rate, scores it window by window
(``jasc_core.inference.windows``) and post-processes the stitched frame scores with the run's thresholds. Subclasses
give ``score_batch``: ``Predictor`` (a run's PyTorch pipeline) and ``OnnxPredictor`` (an exported model).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from jasc_core.contract.data import Event
from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.task_outputs import TaskOutputs
from jasc_core.data.audio import prepare_waveform, read_audio
from jasc_core.errors import ConfigError, DataError
from jasc_core.inference.postprocess import scores_to_events
from jasc_core.inference.sebb import sebb_events
from jasc_core.inference.windows import FileScores, FrameGrid, file_result, score_windows
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.runs.sebb_params import SebbParams


class FilePredictor(ABC):
    """``predict`` (scene label, events) and ``scores`` (raw) of files or waveforms of any length."""

    def __init__(self, *, grid: FrameGrid, tasks: Mapping[str, TaskOutputs], labels: Mapping[str, Sequence[str]],
                 thresholds: Mapping[str, np.ndarray | float] | np.ndarray | float, postprocess: PostprocessConfig | None,
                 window_seconds: float,
                 hop_seconds: float | None = None, batch_size: int = 16) -> None:
        """``tasks``: the model's tasks as inference sees them; ``thresholds``: by task, or one value for all."""
        if window_seconds <= 0 or (hop_seconds is not None and hop_seconds <= 0):
            raise ConfigError(f"window {window_seconds} s and hop {hop_seconds} s must be positive")
        self.grid = grid
        self.tasks = dict(tasks)
        self.sample_rate = grid.sample_rate
        self.labels = labels
        self.thresholds = thresholds
        self.postprocess = postprocess
        self.window_seconds = float(window_seconds)
        self.hop_seconds = float(hop_seconds) if hop_seconds is not None else self.window_seconds / 2
        self.batch_size = batch_size
        #: The run's collar-F1-tuned SEBB parameters (``sebb.json``): events by SEBB detection instead of
        #: ``postprocess``; None: median filter and thresholds.
        self.sebb: SebbParams | None = None

    @abstractmethod
    def score_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Windows ``[B, S]`` -> probabilities by output name (the ``Scorer`` of ``score_windows``)."""

    def waveform(self, source: str | Path | npt.ArrayLike, sample_rate: int | None = None) -> np.ndarray:
        """A file path or an in-memory waveform (``sample_rate`` required) as mono at the model's rate.

        Arrays may be ``[samples]``, ``[samples, channels]`` or ``[channels, samples]`` (torch's layout: fewer rows
        than columns).
        """
        if isinstance(source, (str, Path)):
            return read_audio(source, self.sample_rate)
        if sample_rate is None:
            raise DataError("a waveform needs its sample_rate (predict(waveform, sample_rate=...))")
        array = np.asarray(source)
        if array.ndim == 2 and array.shape[0] < array.shape[1]:
            array = array.T
        return prepare_waveform(array, sample_rate, self.sample_rate)

    def scores(self, source: str | Path | npt.ArrayLike, sample_rate: int | None = None) -> FileScores:
        """Raw scores: scene probabilities averaged over windows, stitched frame probabilities, clip scores."""
        return score_windows(self.waveform(source, sample_rate), self.score_batch, self.grid, self.window_seconds,
                             self.hop_seconds, tasks=self.tasks, batch_size=self.batch_size)

    def to_events(self, frame_scores: np.ndarray, labels: Sequence[str], hop: float, thresholds: np.ndarray | float) -> list[Event]:
        if self.sebb is not None:
            return sebb_events(frame_scores, labels, hop, self.sebb)
        return scores_to_events(frame_scores, labels, hop, thresholds, self.postprocess)

    def predict(self, source: str | Path | npt.ArrayLike, sample_rate: int | None = None) -> JSONObject:
        """Each task's result (scene label and probabilities, events with peak scores, ...) of a file or waveform."""
        name = str(source) if isinstance(source, (str, Path)) else "waveform"
        return file_result(name, self.scores(source, sample_rate), self.labels, self.thresholds, self.to_events)
