"""Predictions with an exported model (``jasc export``): onnxruntime in place of torch, same windows and results.

The graph takes a fixed number of samples (see ``jasc_core.inference.export``): a file shorter than one window is
zero-padded to it and its frame scores are cut back to the file's frames. Everything after the model (stitching,
post-processing, the result structure) is the code ``jasc predict`` uses on a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.contract.json_types import JSONObject, JSONValue
from jasc_core.contract.task_outputs import TaskOutputs
from jasc_core.errors import RunError
from jasc_core.inference.file_predictor import FilePredictor
from jasc_core.inference.onnx_files import onnx_session, require_onnx
from jasc_core.inference.windows import FrameGrid
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.runs.sebb_params import FILE_NAME as SEBB_FILE
from jasc_core.runs.sebb_params import read_sebb

if TYPE_CHECKING:  # onnxruntime is an optional extra
    from onnxruntime import InferenceSession


def export_tasks(frontend: JSONObject, session: InferenceSession) -> dict[str, TaskOutputs]:
    """The exported model's tasks (``frontend.json``); a folder from before they were stored: told by output rank
    (frame-wise ``[B, T, M]`` outputs are frame-level, ``<task>_clip`` their clip outputs, the rest one class)."""
    if "tasks" in frontend:
        return {spec["task"]: TaskOutputs.from_dict(spec) for spec in frontend["tasks"]}
    names = {o.name: o for o in session.get_outputs()}
    tasks = {}
    for onnx_name, name in frontend["outputs"].items():
        if "/" in name:
            continue
        frames = len(names[onnx_name].shape) == 3
        tasks[name] = TaskOutputs(task=name, kind="frames" if frames else "class",
                                  result_key=f"{name}s" if frames else name, table=f"{name}s.tsv",
                                  selection_metric="frame_micro_f1" if frames else "accuracy")
    return tasks


def read_export_json(folder: Path, name: str) -> JSONValue:
    path = folder / name
    if not path.is_file():
        raise RunError(f"{folder} is not a jasc export folder: {name} missing (made by `jasc export`)")
    return json.loads(path.read_text(encoding="utf-8"))


class OnnxPredictor(FilePredictor):
    """An export folder ready for files and waveforms: ``predict`` and ``scores`` as ``jasc.load``'s predictor."""

    def __init__(self, folder: str | Path, *, int8: bool = False, window_seconds: float | None = None,
                 hop_seconds: float | None = None, threads: int = 1) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RunError(f"{self.folder} is not a jasc export folder: it does not exist")
        frontend = read_export_json(self.folder, "frontend.json")
        labels = read_export_json(self.folder, "labels.json")
        threshold_data = read_export_json(self.folder, "thresholds.json")
        model = self.folder / ("model.int8.onnx" if int8 else "model.onnx")
        if not model.is_file():
            raise RunError(f"{model} missing" + (" (export with --quantize int8)" if int8 else ""))
        self.session = onnx_session(model, require_onnx(), threads)
        self.outputs = [frontend["outputs"][o.name] for o in self.session.get_outputs()]
        rate = int(frontend["sample_rate"])
        self.window_samples = int(frontend["window_samples"])
        frame_hop = int(frontend["frame_hop_samples"])
        extra = int(frontend["frames_per_window"]) - self.window_samples // frame_hop  # 1 with centred frames
        grid = FrameGrid(rate, frame_hop, lambda samples: samples // frame_hop + extra)
        window = window_seconds or self.window_samples / rate
        if abs(window * rate - self.window_samples) >= frame_hop:
            raise RunError(f"--window {window_seconds}: the exported model takes {self.window_samples} samples "
                           f"({self.window_samples / rate:g} s) only")
        thresholds = threshold_data.get("by_task", threshold_data["thresholds"])

        def value(v: JSONValue) -> np.ndarray | float:
            return np.asarray(v, dtype=float) if isinstance(v, list) else float(v)

        super().__init__(
            grid=grid, tasks=export_tasks(frontend, self.session), labels=labels,
            postprocess=PostprocessConfig(**threshold_data["postprocess"]),
            thresholds={k: value(v) for k, v in thresholds.items()} if isinstance(thresholds, dict) else value(thresholds),
            window_seconds=window, hop_seconds=hop_seconds,
        )
        frame_task = next((t for t, o in self.tasks.items() if o.frame_level), None)
        sebb = read_sebb(self.folder / SEBB_FILE, labels[frame_task]) if frame_task else None
        if sebb is not None:  # the run's tuned SEBBs, carried by the export, as jasc predict RUN uses them
            self.sebb = sebb["cbf"]

    def score_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Windows ``[B, S]`` -> probabilities by output name; a short file's window is zero-padded to the graph's."""
        samples = batch.shape[1]
        if samples < self.window_samples:
            batch = np.pad(batch, ((0, 0), (0, self.window_samples - samples)))
        probs = dict(zip(self.outputs, self.session.run(None, {"waveform": batch.astype(np.float32)}), strict=True))
        if samples < self.window_samples:
            for name in probs:
                if self.tasks[name.split("/", 1)[0]].is_frame_track(name):
                    probs[name] = probs[name][:, : self.grid.num_frames(samples)]
        return probs
