"""``jasc export``: a run's model as ONNX, with the log-mel front end inside the graph, and an optional int8 copy.

The graph maps waveforms ``[batch, samples]`` at the model's rate (one window: the model's clip length) to
probabilities: ``scene [batch, N]`` (softmax), ``event [batch, frames, M]`` and ``event_clip [batch, M]`` (sigmoid).

Front end in the graph, not beside it: ``torch.stft`` (complex output) is the snag of the TorchScript exporter, but
the ``logmel`` plugin has a second STFT backend, nnAudio's, a 1-D convolution with Fourier kernels that traces as
plain ``Conv``. The export traces on that backend (same window, framing, filterbank and learned normalisation), then
``jasc_core.inference.onnx_graph`` replaces the power spectrum and mel projection computed from those Fourier-kernel
convolutions by a two-step FFT made of matrix products (``jasc_core.inference.onnx_fft``; any other Fourier-kernel
convolution by ONNX's ``STFT`` operator, opset 17), so the file holds the weights, the window and a sparse mel basis,
not ``2 x bins x n_fft`` kernel values. The cost: the sample count is fixed at export (the framing's padding is computed from it), so
shorter files are zero-padded to one window by ``jasc predict --onnx``.

Smaller copies (``--quantize int8,fp16``, ``jasc_core.inference.quantize``): static int8 (QDQ, calibrated on
``--calibration-clips`` clips of the validation split, per-channel 7-bit weights, batch norm folded), with the accuracy
change on ``--split`` reported; fp16 for GPUs.

The export folder: ``model.onnx`` (+ ``model.int8.onnx``, ``model.fp16.onnx``), ``labels.json``, ``frontend.json``, ``thresholds.json``
(tuned thresholds or the recipe's, plus the post-processing with the run's tuned median filters), ``sebb.json`` when the
run has tuned SEBB parameters (``run_event_postprocessing``: ``jasc predict --onnx`` then finds the events ``jasc predict
RUN`` finds), ``export.json`` (what was checked, with figures) and a one-page ``README.md``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from jasc_core.contract.batch import Batch
from jasc_core.contract.json_types import JSONObject, JSONValue
from jasc_core.contract.task_outputs import onnx_output_name
from jasc_core.contract.tasks import TASK_DESCRIPTIONS, task_of
from jasc_core.data.clips import clip_dataset
from jasc_core.data.loaders import split_loaders
from jasc_core.errors import ConfigError, DataError
from jasc_core.inference.onnx_files import EXPORT_README, onnx_session, require_onnx
from jasc_core.inference.predict import (
    DEFAULT_WINDOW_SECONDS,
    frame_hop_samples,
    run_event_postprocessing,
    task_thresholds,
)
from jasc_core.inference.scoring import load_split, load_trained
from jasc_core.inference.windows import threshold_of
from jasc_core.model.pipeline import Labels, Pipeline
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.recipes.model import build
from jasc_core.recipes.types import Recipe
from jasc_core.runs.sebb_params import FILE_NAME as SEBB_FILE
from jasc_core.runs.sebb_params import SebbParams

#: Eval clips the ONNX round trip is checked on (issue 13: 10).
ROUND_TRIP_CLIPS = 10
#: Largest accepted |onnxruntime - PyTorch| of the fp32 probabilities.
ROUND_TRIP_TOLERANCE = 1e-4
#: Decision thresholds by task (``task_thresholds``): one for all classes or one per class.
Thresholds = Mapping[str, np.ndarray | float]


class ProbabilityGraph(nn.Module):
    """Pipeline -> probabilities of the outputs ``names`` in that order, for tracing."""

    def __init__(self, pipeline: Pipeline, names: Sequence[str]) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.names = list(names)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.pipeline(waveform)
        return tuple(TASK_DESCRIPTIONS[task_of(name)].output_probabilities(name, outputs[name]) for name in self.names)


def trace_to_onnx(pipeline: Pipeline, samples: int, path: Path, opset: int = 17) -> list[str]:
    """Write ``pipeline`` (waveforms of ``samples`` samples, any batch size) as ONNX; returns its output names."""
    with torch.no_grad():
        produced = pipeline(torch.zeros(1, samples))
    names = [n for task in pipeline.tasks for n in TASK_DESCRIPTIONS[task].output_names() if n in produced]
    graph = ProbabilityGraph(pipeline, names).eval()
    onnx_names = [onnx_output_name(n) for n in names]
    with warnings.catch_warnings():  # the tracer warns about every shape it turns into a constant
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (torch.zeros(2, samples),), str(path), input_names=["waveform"],
                          output_names=onnx_names, opset_version=opset, dynamo=False,
                          dynamic_axes={name: {0: "batch"} for name in ["waveform", *onnx_names]})
    rewrite_graph(path, opset)
    return names


def rewrite_graph(path: Path, opset: int) -> dict[str, int]:
    """The power spectrum and mel projection -> a matrix-product FFT (opset 13+), other Fourier-kernel convolutions
    -> ONNX ``STFT`` (opset 17+); checks batch norm was folded into the convolutions."""
    import onnx

    from jasc_core.inference.onnx_graph import fourier_convs_to_stft, fourier_power_to_fft
    from jasc_core.inference.quantize import batch_norm_nodes

    model = onnx.load(str(path))
    done = {"fft_rewrites": fourier_power_to_fft(model) if opset >= 13 else 0}
    done.update(stft_rewrites=fourier_convs_to_stft(model) if opset >= 17 else 0,
                batch_norm_nodes=batch_norm_nodes(model))
    onnx.save(model, str(path))
    return done


def exportable_recipe(recipe: Recipe) -> Recipe:
    """The recipe with the log-mel front end on its convolutional (nnAudio) STFT backend, when it has backends."""
    fields = type(recipe.features).model_fields
    if "backend" not in fields:
        return recipe
    return recipe.model_copy(update={"features": recipe.features.model_copy(update={"backend": "nnaudio"})})


def eval_batches(recipe: Recipe, pipeline: Pipeline, labels: Labels, split: str, samples: int) -> list[Batch]:
    """Batches of the run's ``split`` whose clips are one window long (``samples``), with targets."""
    dataset = build("dataset", recipe.data)
    dataset.prepare()
    clips = load_split(dataset, split, recipe.data.name)
    data = clip_dataset(clips, dataset, pipeline.features, labels, cache=False)
    batches = [batch for loader in split_loaders(data, recipe.train.batch_size, 0) for batch in loader
               if batch.waveform.shape[1] == samples]
    if not batches:
        lengths = sorted({round(c.duration, 3) for c in clips})
        raise DataError(f"split '{split}' has no clips of the export window ({samples} samples); clip lengths: "
                        f"{lengths} s; give --window")
    return batches


def in_chunks(run: Callable[[np.ndarray], Sequence[np.ndarray]], waveforms: torch.Tensor, names: Sequence[str],
              size: int = 16) -> dict[str, np.ndarray]:
    """``run`` (numpy batch -> list of arrays in ``names`` order) over ``waveforms`` in batches of ``size``."""
    parts = [run(waveforms[i: i + size].numpy()) for i in range(0, len(waveforms), size)]
    return {name: np.concatenate([part[k] for part in parts]) for k, name in enumerate(names)}


def split_metrics(probs: dict[str, np.ndarray], batches: list[Batch], labels: Labels,
                  thresholds: Thresholds) -> dict[str, float]:
    """Each task's selection metric (scene accuracy, event frame micro-F1, ...) of probabilities over ``batches``."""
    metrics = {}
    for task in labels.as_dict():
        if task not in probs:
            continue
        description = TASK_DESCRIPTIONS[task]
        targets = np.concatenate([b.targets[task].numpy() for b in batches if task in b.targets])
        masks = np.concatenate([b.masks[task].numpy() for b in batches if task in b.masks])
        values = description.metrics(probs[task][masks], targets[masks], labels[task], threshold_of(thresholds, task))
        metrics[f"{task}/{description.selection_metric}"] = float(values[description.selection_metric])
    return metrics


#: Copies ``--quantize`` can make.
COPIES = ("int8", "fp16")


def export_onnx(
    run_dir: str | Path, out_dir: str | Path, *, model: str = "student", quantize: str | None = None,
    window_seconds: float | None = None, split: str = "eval", opset: int = 17, calibration_clips: int = 100,
    calibration_split: str | None = None,
) -> JSONObject:
    """Export a run's model to ``out_dir``; check the round trip on ``split`` clips; returns the report.

    ``quantize``: ``int8``, ``fp16`` or both, comma-separated. int8 is calibrated on ``calibration_clips`` clips of
    ``calibration_split`` (default: the recipe's validation split).
    """
    copies = [part.strip() for part in (quantize or "").split(",") if part.strip()]
    unknown = [c for c in copies if c not in COPIES]
    if unknown or calibration_clips < 1:
        raise ConfigError(f"--quantize {quantize!r}: give {' or '.join(COPIES)} (comma-separated)" if unknown
                          else f"--calibration-clips {calibration_clips}: must be at least 1")
    ort = require_onnx()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The run's own pipeline is the reference of the round trip; the exported one differs in its STFT backend only.
    recipe, original, _ = load_trained(run_dir, device="cpu", model=model)
    recipe, pipeline, labels = load_trained(run_dir, recipe=exportable_recipe(recipe), device="cpu", model=model)
    features = pipeline.features
    rate = int(features.sample_rate)
    frame_hop = frame_hop_samples(features)
    window = window_seconds or float(getattr(recipe.data, "clip_seconds", None) or DEFAULT_WINDOW_SECONDS)
    samples = max(1, round(window * rate) // frame_hop) * frame_hop
    path = out / "model.onnx"
    names = trace_to_onnx(pipeline, samples, path, opset)
    batches = eval_batches(recipe, pipeline, labels, split, samples)
    waveforms = torch.cat([b.waveform for b in batches])
    thresholds, source = task_thresholds(run_dir, pipeline.tasks, labels, recipe.evaluate.threshold)
    reference = ProbabilityGraph(original, names).eval()
    with torch.no_grad():
        torch_probs = in_chunks(lambda x: [p.numpy() for p in reference(torch.from_numpy(x))], waveforms, names)
    fp32 = onnx_session(path, ort)
    fp32_probs = in_chunks(lambda x: fp32.run(None, {"waveform": x}), waveforms, names)
    check = waveforms[:ROUND_TRIP_CLIPS].shape[0]
    diff = max(float(np.abs(fp32_probs[n][:check] - torch_probs[n][:check]).max()) for n in names)
    if diff >= ROUND_TRIP_TOLERANCE:
        raise DataError(f"ONNX round trip: max |onnxruntime - PyTorch| = {diff:.3g} on {check} clips "
                        f"(tolerance {ROUND_TRIP_TOLERANCE:g}); {path} is not trustworthy")
    parameters = sum(p.numel() for p in pipeline.parameters())
    report: JSONObject = {
        "model": model, "run": str(run_dir), "opset": opset, "window_samples": samples,
        "frames_per_window": int(features.num_frames(samples)),
        "round_trip": {"clips": check, "split": split, "max_abs_diff": diff, "tolerance": ROUND_TRIP_TOLERANCE},
        "parameters": int(parameters), "parameter_bytes_fp32": int(4 * parameters),
        "fp32": {"bytes": path.stat().st_size, "metrics": split_metrics(fp32_probs, batches, labels, thresholds)},
        "metrics_clips": int(waveforms.shape[0]),
    }
    smaller_copies(copies, path, (recipe, pipeline, labels, samples), (waveforms, names, batches, thresholds),
                   calibration_clips, calibration_split, report)
    write_export_files(out, recipe, pipeline, labels, names, (rate, frame_hop, samples), (thresholds, source), report,
                       run_event_postprocessing(run_dir, recipe.evaluate.postprocess, pipeline.tasks, labels))
    return report


def smaller_copies(copies: Sequence[str], path: Path, model: tuple[Recipe, Pipeline, Labels, int],
                   checked: tuple[torch.Tensor, Sequence[str], list[Batch], Thresholds], calibration_clips: int,
                   calibration_split: str | None, report: JSONObject) -> None:
    """Write the int8 and fp16 copies asked for beside ``path`` and add their sizes and metrics to ``report``."""
    recipe, pipeline, labels, samples = model
    waveforms, names, batches, thresholds = checked
    ort = require_onnx()
    if "int8" in copies:
        from jasc_core.inference.quantize import quantize_int8

        calibration_split = calibration_split or recipe.train.val_split
        calibration = torch.cat([b.waveform for b in eval_batches(recipe, pipeline, labels, calibration_split,
                                                                  samples)])[:calibration_clips].numpy()
        int8_path = path.with_name("model.int8.onnx")
        details = quantize_int8(path, int8_path, calibration)
        report["int8"] = copy_report(int8_path, ort, waveforms, names, batches, labels, thresholds, report)
        report["int8"].update(details, calibration_split=calibration_split)
    if "fp16" in copies:
        from jasc_core.inference.quantize import convert_fp16

        fp16_path = path.with_name("model.fp16.onnx")
        convert_fp16(path, fp16_path)
        if "CUDAExecutionProvider" in ort.get_available_providers():
            report["fp16"] = copy_report(fp16_path, ort, waveforms, names, batches, labels, thresholds, report,
                                         provider="CUDAExecutionProvider")
        else:  # onnxruntime's CPU provider can crash the process on an fp16 graph (jasc_core.inference.quantize)
            report["fp16"] = {"bytes": fp16_path.stat().st_size, "checked": False,
                              "why": "no CUDA provider here; fp16 is checked on GPUs only"}


def copy_report(path: Path, ort: ModuleType, waveforms: torch.Tensor, names: Sequence[str], batches: list[Batch],
                labels: Labels, thresholds: Thresholds, report: JSONObject,
                provider: str = "CPUExecutionProvider") -> JSONObject:
    """A smaller copy's file size and metrics, and their change from fp32 in points."""
    session = onnx_session(path, ort) if provider == "CPUExecutionProvider" else ort.InferenceSession(
        str(path), providers=[provider])
    metrics = split_metrics(in_chunks(lambda x: session.run(None, {"waveform": x}), waveforms, names), batches,
                            labels, thresholds)
    return {"bytes": path.stat().st_size, "metrics": metrics,
            "change_points": {k: round(100 * (v - report["fp32"]["metrics"][k]), 3) for k, v in metrics.items()}}


def write_export_files(out: Path, recipe: Recipe, pipeline: Pipeline, labels: Labels, names: Sequence[str],
                       grid: tuple[int, int, int], thresholds: tuple[Thresholds, str],
                       report: JSONObject, events: tuple[PostprocessConfig, dict[str, SebbParams] | None]) -> None:
    """labels.json, frontend.json (with the tasks' output kinds), thresholds.json (with the post-processing of
    ``events``), sebb.json (its SEBB parameters, if any), export.json and README.md."""
    rate, frame_hop, samples = grid
    by_task, source = thresholds
    postprocess, sebb = events

    def dump(name: str, data: object) -> None:
        (out / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def plain(value: np.ndarray | float) -> JSONValue:
        return value.tolist() if isinstance(value, np.ndarray) else value

    dump("labels.json", labels.as_dict())
    dump("frontend.json", {
        "sample_rate": rate, "window_samples": samples, "frame_hop_samples": frame_hop,
        "hop_seconds": frame_hop / rate, "frames_per_window": report["frames_per_window"],
        "outputs": {onnx_output_name(n): n for n in names}, "in_graph": True,
        "tasks": [TASK_DESCRIPTIONS[task].outputs().as_dict() for task in pipeline.tasks],
        "features": recipe.features.model_dump(), "mono": "mean of channels", "resampler": "soxr (HQ)",
    })
    tuned = next((task for task in pipeline.tasks if TASK_DESCRIPTIONS[task].frame_level), None)
    dump("thresholds.json", {
        # "thresholds": the frame-level task's, as exports before per-task thresholds wrote them.
        "thresholds": plain(by_task[tuned]) if tuned else float(recipe.evaluate.threshold),
        "by_task": {task: plain(value) for task, value in by_task.items()},
        "source": source, "postprocess": postprocess.model_dump(),
    })
    (out / SEBB_FILE).unlink(missing_ok=True)  # a re-export into the folder of a run tuned since must not keep it
    if sebb is not None:
        dump(SEBB_FILE, {name: params.to_json() for name, params in sebb.items()})
    report["events"] = (f"SEBB detection ({SEBB_FILE}, the run's collar-F1-tuned set)" if sebb is not None
                        else "median filter and thresholds (thresholds.json)")
    dump("export.json", report)
    (out / "README.md").write_text(EXPORT_README.format(**{
        "run": report["run"], "model": report["model"], "rate": rate, "samples": samples,
        "seconds": samples / rate, "outputs": ", ".join(onnx_output_name(n) for n in names),
        "diff": report["round_trip"]["max_abs_diff"], "clips": report["round_trip"]["clips"],
    }), encoding="utf-8")
