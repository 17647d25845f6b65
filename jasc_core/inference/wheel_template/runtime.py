"""Inference with the ONNX model(s) of one jasc run, packaged by ``jasc export RUN --format wheel``.

Needs onnxruntime, numpy and soundfile only (soxr where a file's rate differs from the model's). The windowing is
jasc's (``jasc_core.inference.windows``, numpy only, repeated here so the package needs no jasc): a file longer than
the model's window is cut into windows every half window plus one aligned to the end, scene probabilities are
averaged over windows and frame probabilities overlap-averaged into one track per file.

    import PACKAGE
    result = PACKAGE.predict("street.wav")                       # the general model
    result = PACKAGE.predict(waveform, 32000, device="b")       # device b's fine-tuned model, if the run had one
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

MODELS = Path(__file__).parent / "models"

# The package runs without jasc: these repeat jasc_core.contract.json_types (aliases are evaluated at import: Union).
#: A JSON value: what the model folder's .json files hold and what ``predict`` returns.
JSONValue = Union[str, int, float, bool, None, list["JSONValue"], dict[str, "JSONValue"]]  # noqa: UP007
JSONObject = dict[str, JSONValue]
#: What ``predict`` and ``scores`` take: a file path or a waveform ``[samples]`` / ``[samples, channels]``.
AudioSource = Union[str, Path, npt.ArrayLike]  # noqa: UP007
#: ``scores``: the model's folder name (str), duration (float), window count (int) and probabilities by output.
Scores = dict[str, Union[str, float, int, np.ndarray]]  # noqa: UP007


def _read(folder: Path, name: str) -> JSONObject:
    """One .json file of a model folder (each holds one object: devices, labels, frontend)."""
    return json.loads((folder / name).read_text(encoding="utf-8"))


def devices() -> dict[str, str]:
    """Recording devices with a model of their own -> its folder name under models/ (others use ``general``)."""
    return _read(MODELS, "devices.json")


def labels() -> dict[str, list[str]]:
    """Class names per task, in output order."""
    return _read(MODELS / "general", "labels.json")


@cache
def _session(folder: str) -> InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(Path(folder) / "model.onnx"), options,
                                        providers=["CPUExecutionProvider"])


def _mono_at(source: AudioSource, sample_rate: int | None, rate: int) -> np.ndarray:
    if isinstance(source, (str, Path)):
        import soundfile

        audio, sample_rate = soundfile.read(str(source), dtype="float32", always_2d=True)
    else:
        if sample_rate is None:
            raise ValueError("a waveform needs its sample_rate: predict(array, sample_rate)")
        audio = np.asarray(source, dtype=np.float32)
        if audio.ndim == 2 and audio.shape[0] < audio.shape[1]:
            audio = audio.T
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise ValueError("the audio is empty or holds NaN/infinite samples")
    if int(sample_rate) != rate:
        import soxr  # only for audio at another rate than the model's

        audio = soxr.resample(audio, int(sample_rate), rate)
    return np.asarray(audio, dtype=np.float32)


def _starts(n: int, window: int, hop: int, frame_hop: int) -> list[int]:
    hop = max(frame_hop, min(hop, window) // frame_hop * frame_hop)
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, hop))
    last = (n - window) // frame_hop * frame_hop
    if starts[-1] < last:
        starts.append(last)
    return starts


def _tasks(front: JSONObject) -> dict[str, str]:
    """Each task of the model -> its output kind (``class``, ``multilabel`` or ``frames``), as ``jasc export`` wrote
    them in frontend.json: the task descriptions' words, so this file names no task."""
    return {spec["task"]: spec["kind"] for spec in front["tasks"]}


def scores(source: AudioSource, sample_rate: int | None = None, device: str | None = None) -> Scores:
    """Raw probabilities by output name: a clip-level task's ``[N]`` averaged over windows, a frame-level task's
    ``[T, M]`` frames overlap-averaged and its ``<task>_clip`` ``[M]`` (the highest over windows)."""
    folder = MODELS / devices().get(device, "general") if device is not None else MODELS / "general"
    front = _read(folder, "frontend.json")
    kinds = _tasks(front)
    rate, window, frame_hop = int(front["sample_rate"]), int(front["window_samples"]), int(front["frame_hop_samples"])
    extra = int(front["frames_per_window"]) - window // frame_hop
    audio = _mono_at(source, sample_rate, rate)
    n = len(audio)
    starts = _starts(n, window, round(window / 2), frame_hop)
    length = min(window, n)
    session = _session(str(folder))
    names = [front["outputs"][o.name] for o in session.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {}
    for first in range(0, len(starts), 16):
        batch = np.stack([audio[s: s + length] for s in starts[first: first + 16]]).astype(np.float32)
        if length < window:
            batch = np.pad(batch, ((0, 0), (0, window - length)))
        for name, probs in zip(names, session.run(None, {"waveform": batch}), strict=True):
            if kinds.get(name) == "frames" and length < window:
                probs = probs[:, : length // frame_hop + extra]
            parts.setdefault(name, []).append(np.asarray(probs, dtype=np.float32))
    joined = {name: np.concatenate(p) for name, p in parts.items()}
    result: Scores = {"model": folder.name, "duration": n / rate, "windows": len(starts)}
    for name, windows in joined.items():
        if name not in kinds:  # a frame-level task's clip output, under its ONNX name (``event_clip``)
            result[name.replace("/", "_")] = windows.max(axis=0)
        elif kinds[name] == "frames":
            result[name] = _overlap_average(windows, [s // frame_hop for s in starts], n // frame_hop + extra)
        else:
            result[name] = windows.mean(axis=0)
    return result


def _overlap_average(tracks: np.ndarray, starts: list[int], n_frames: int) -> np.ndarray:
    """Windows' frame tracks placed at their first frames and averaged where they overlap."""
    total = np.zeros((n_frames, tracks.shape[-1]))
    counts = np.zeros(n_frames)
    for track, start in zip(tracks, starts, strict=True):
        stop = min(n_frames, start + track.shape[0])
        total[start:stop] += track[: stop - start]
        counts[start:stop] += 1
    return (total / np.maximum(counts, 1)[:, None]).astype(np.float32)


def predict(source: AudioSource, sample_rate: int | None = None, device: str | None = None) -> JSONObject:
    """Labels and probabilities of a file path or a waveform (``[samples]`` or ``[samples, channels]`` with
    ``sample_rate``); ``device``: the recording device (its fine-tuned model when there is one, else the general).

    Per task: one class per clip -> ``<task>`` (the top label) and ``<task>_probabilities``; several labels per clip
    -> ``<task>_probabilities``; frames -> ``<task>_frame_probabilities`` ([T, M], no event list: post-processing
    is jasc's)."""
    raw = scores(source, sample_rate, device)
    folder = MODELS / devices().get(device, "general") if device is not None else MODELS / "general"
    result: JSONObject = {"model": raw["model"], "duration": round(raw["duration"], 6), "windows": raw["windows"]}
    names = labels()
    for task, kind in _tasks(_read(folder, "frontend.json")).items():
        if task not in raw:
            continue
        if kind == "frames":
            result[f"{task}_frame_probabilities"] = raw[task].tolist()
            continue
        if kind == "class":
            result[task] = names[task][int(np.argmax(raw[task]))]
        result[f"{task}_probabilities"] = {label: float(p) for label, p in zip(names[task], raw[task], strict=True)}
    return result


def main(argv: list[str] | None = None) -> int:
    """Console script: ``PACKAGE [--device D] FILE...`` prints one JSON line per file."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="audio files")
    parser.add_argument("--device", default=None, help="recording device (its own model when there is one)")
    args = parser.parse_args(argv)
    for path in args.files:
        result = predict(path, device=args.device)
        result.pop("event_frame_probabilities", None)
        print(json.dumps({"filename": path, **result}))
    return 0
