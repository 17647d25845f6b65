"""``jasc predict`` and ``jasc export``: thin commands over ``jasc_core.inference.predict`` / ``.export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jasc_core.console import output_console
from jasc_core.errors import RunError

err_console = output_console(stderr=True, highlight=False)


def predict_command(
    inputs: Annotated[list[str], typer.Argument(help="RUN_DIR then audio files, folders or globs (with --onnx: "
                                                "only the audio).", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for events.tsv + scenes.tsv (or "
                                             "predictions.json); default: stdout.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of TSV.")] = False,
    window: Annotated[float | None, typer.Option("--window", help="Window length in seconds (default: the "
                                                 "model's clip length).")] = None,
    hop: Annotated[float | None, typer.Option("--hop", help="Window hop in seconds (default: half a window).")] = None,
    model: Annotated[str, typer.Option("--model", help="student, or an extra model the run kept (teacher).")] = "student",
    onnx: Annotated[Path | None, typer.Option("--onnx", help="Run an exported model (jasc export) instead of a "
                                              "run folder; no torch needed.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Windows per model call, across files.")] = 32,
    workers: Annotated[int, typer.Option("--workers", help="Processes decoding files ahead of the model (0: "
                                         "decode in this process).")] = 2,
    device: Annotated[str | None, typer.Option("--device", help="Recording device of the files: its fine-tuned "
                                               "model (jasc finetune-devices), else the general one.")] = None,
) -> None:
    """Scene label and events of audio files of any length, rate and channel count (DCASE TSV or JSON).

    Unreadable files are named on stderr and skipped; the exit code is then 1.
    """
    from jasc_core.inference.file_stream import predict_files
    from jasc_core.inference.outputs import expand_inputs, write_results

    if batch_size < 1 or workers < 0:
        raise RunError(f"--batch-size {batch_size} must be at least 1 and --workers {workers} at least 0")

    if onnx is not None:
        from jasc_core.inference.onnx_predict import OnnxPredictor

        predictor = OnnxPredictor(onnx, window_seconds=window, hop_seconds=hop)
        audio = inputs
    else:
        if len(inputs) < 2:
            raise RunError("give a RUN_DIR and at least one audio file, folder or glob (or --onnx EXPORT_DIR AUDIO...)")
        from jasc_core.inference.device_models import run_for_device
        from jasc_core.inference.predict import Predictor

        predictor = Predictor.from_run(run_for_device(inputs[0], device), model=model, window_seconds=window,
                                       hop_seconds=hop)
        audio = inputs[1:]
    paths = expand_inputs(audio)
    if not paths:
        raise RunError(f"no audio files in {' '.join(audio)}")
    results, skipped, throughput = predict_files(
        predictor, paths, lambda line: err_console.print(line, markup=False, soft_wrap=True),
        batch_size=batch_size, workers=min(workers, len(paths) - 1))
    written = write_results(results, out, as_json, typer.echo, predictor.tasks)
    for path in written:
        err_console.print(f"wrote {path}", markup=False)
    err_console.print(throughput.line(), markup=False)
    if skipped:
        err_console.print(f"{len(skipped)} of {len(paths)} files skipped", markup=False)
        raise typer.Exit(1)


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `jasc run`.", show_default=False)],
    format_: Annotated[str, typer.Option("--format", help="Export format: onnx (a folder), or wheel (an installable "
                                         "inference package with the ONNX model(s), per-device ones too).")] = "onnx",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Export folder (default: RUN_DIR/export-onnx).")] = None,
    quantize: Annotated[str | None, typer.Option("--quantize", help="Also write smaller copies: int8 (static, "
                                                 "calibrated), fp16 (GPUs), or int8,fp16.")] = None,
    calibration_clips: Annotated[int, typer.Option("--calibration-clips", help="Clips int8 is calibrated on.")] = 100,
    calibration_split: Annotated[str | None, typer.Option("--calibration-split", help="Split the calibration clips "
                                                          "come from (default: the recipe's validation split).")] = None,
    model: Annotated[str, typer.Option("--model", help="student, or an extra model the run kept (teacher).")] = "student",
    window: Annotated[float | None, typer.Option("--window", help="Samples the graph takes, in seconds (default: "
                                                 "the model's clip length).")] = None,
    split: Annotated[str, typer.Option("--split", help="Split the round trip and metrics are checked on.")] = "eval",
) -> None:
    """Export a run's model as ONNX (log-mel front end in the graph), checked against PyTorch on eval clips."""
    if format_ == "wheel":
        from jasc_core.inference.wheel_package import build_wheel

        typer.echo(f"wrote {build_wheel(run_dir, out or run_dir / 'export-wheel', split=split, window_seconds=window)}")
        return
    if format_ != "onnx":
        raise RunError(f"--format {format_!r}: only onnx and wheel are supported")
    from jasc_core.inference.export import export_onnx

    folder = out or run_dir / "export-onnx"
    report = export_onnx(run_dir, folder, model=model, quantize=quantize, window_seconds=window, split=split,
                         calibration_clips=calibration_clips, calibration_split=calibration_split)
    trip = report["round_trip"]
    lines = [f"exported {folder}",
             f"round trip: max |onnxruntime - PyTorch| = {trip['max_abs_diff']:.2e} on {trip['clips']} {split} clips",
             f"parameters: {report['parameters']:,} ({report['parameter_bytes_fp32'] / 1e6:.3f} MB at fp32)",
             f"fp32: file {report['fp32']['bytes'] / 1e6:.3f} MB, {_metrics_text(report['fp32']['metrics'])}"]
    for copy in ("int8", "fp16"):
        if copy in report and not report[copy].get("checked", True):
            lines.append(f"{copy}: file {report[copy]['bytes'] / 1e6:.3f} MB, not checked ({report[copy]['why']})")
        elif copy in report:
            change = ", ".join(f"{k} {v:+.2f} points" for k, v in report[copy]["change_points"].items())
            lines.append(f"{copy}: file {report[copy]['bytes'] / 1e6:.3f} MB, "
                         f"{_metrics_text(report[copy]['metrics'])} ({change}; {report['metrics_clips']} {split} "
                         f"clips)")
    for line in lines:
        typer.echo(line)


def _metrics_text(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {100 * value:.2f} %" for name, value in metrics.items())
