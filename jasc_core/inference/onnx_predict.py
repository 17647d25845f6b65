"""Predictions with an exported model (``jasc export``): onnxruntime in place of torch, same windows and results.

The graph takes a fixed number of samples (see ``jasc_core.inference.export``): a file shorter than one window is
zero-padded to it and its frame scores are cut back to the file's frames. Everything after the model (stitching,
post-processing, the result structure) is the code ``jasc predict`` uses on a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from jasc_core.errors import RunError
from jasc_core.inference.audio import prepare_waveform, read_audio
from jasc_core.inference.onnx_files import onnx_session, require_onnx
from jasc_core.inference.postprocess import scores_to_events
from jasc_core.inference.windows import FileScores, FrameGrid, file_result, score_windows
from jasc_core.recipes.blocks import PostprocessConfig


def read_export_json(folder: Path, name: str) -> Any:
    path = folder / name
    if not path.is_file():
        raise RunError(f"{folder} is not a jasc export folder: {name} missing (made by `jasc export`)")
    return json.loads(path.read_text(encoding="utf-8"))


class OnnxPredictor:
    """An export folder ready for files and waveforms: ``predict`` and ``scores`` as ``jasc.load``'s predictor."""

    def __init__(self, folder: str | Path, *, int8: bool = False, window_seconds: float | None = None,
                 hop_seconds: float | None = None, threads: int = 1) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RunError(f"{self.folder} is not a jasc export folder: it does not exist")
        frontend = read_export_json(self.folder, "frontend.json")
        self.labels = read_export_json(self.folder, "labels.json")
        threshold_data = read_export_json(self.folder, "thresholds.json")
        model = self.folder / ("model.int8.onnx" if int8 else "model.onnx")
        if not model.is_file():
            raise RunError(f"{model} missing" + (" (export with --quantize int8)" if int8 else ""))
        self.session = onnx_session(model, require_onnx(), threads)
        self.outputs = [frontend["outputs"][o.name] for o in self.session.get_outputs()]
        self.sample_rate = int(frontend["sample_rate"])
        self.window_samples = int(frontend["window_samples"])
        frame_hop = int(frontend["frame_hop_samples"])
        self.frames_per_window = int(frontend["frames_per_window"])
        extra = self.frames_per_window - self.window_samples // frame_hop  # 1 with centred frames, else 0
        self.grid = FrameGrid(self.sample_rate, frame_hop, lambda samples: samples // frame_hop + extra)
        self.window_seconds = window_seconds or self.window_samples / self.sample_rate
        if abs(self.window_seconds * self.sample_rate - self.window_samples) >= frame_hop:
            raise RunError(f"--window {window_seconds}: the exported model takes {self.window_samples} samples "
                           f"({self.window_samples / self.sample_rate:g} s) only")
        self.hop_seconds = hop_seconds or self.window_seconds / 2
        thresholds = threshold_data["thresholds"]
        self.thresholds = np.asarray(thresholds, dtype=float) if isinstance(thresholds, list) else float(thresholds)
        self.postprocess = PostprocessConfig(**threshold_data["postprocess"])

    def score_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Windows ``[B, S]`` -> probabilities by output name; a short file's window is zero-padded to the graph's."""
        samples = batch.shape[1]
        if samples < self.window_samples:
            batch = np.pad(batch, ((0, 0), (0, self.window_samples - samples)))
        probs = dict(zip(self.outputs, self.session.run(None, {"waveform": batch.astype(np.float32)}), strict=True))
        if samples < self.window_samples and "event" in probs:
            probs["event"] = probs["event"][:, : self.grid.num_frames(samples)]
        return probs

    def scores(self, source: str | Path | np.ndarray, sample_rate: int | None = None) -> FileScores:
        if isinstance(source, (str, Path)):
            waveform = read_audio(source, self.sample_rate)
        else:
            if sample_rate is None:
                raise RunError("a waveform needs its sample_rate")
            waveform = prepare_waveform(np.asarray(source), sample_rate, self.sample_rate)
        return score_windows(waveform, self.score_batch, self.grid, self.window_seconds, self.hop_seconds)

    def to_events(self, frame_scores: np.ndarray, labels: Any, hop: float, thresholds: Any) -> list:
        return scores_to_events(frame_scores, labels, hop, thresholds, self.postprocess)

    def predict(self, source: str | Path | np.ndarray, sample_rate: int | None = None) -> dict[str, Any]:
        name = str(source) if isinstance(source, (str, Path)) else "waveform"
        return file_result(name, self.scores(source, sample_rate), self.labels, self.thresholds, self.to_events)
