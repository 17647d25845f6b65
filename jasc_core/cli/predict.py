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
) -> None:
    """Scene label and events of audio files of any length, rate and channel count (DCASE TSV or JSON).

    Unreadable files are named on stderr and skipped; the exit code is then 1.
    """
    from jasc_core.inference.outputs import expand_inputs, predict_many, write_results

    if onnx is not None:
        from jasc_core.inference.onnx_predict import OnnxPredictor

        predictor = OnnxPredictor(onnx, window_seconds=window, hop_seconds=hop)
        audio = inputs
    else:
        if len(inputs) < 2:
            raise RunError("give a RUN_DIR and at least one audio file, folder or glob (or --onnx EXPORT_DIR AUDIO...)")
        from jasc_core.inference.predict import Predictor

        predictor = Predictor.from_run(inputs[0], model=model, window_seconds=window, hop_seconds=hop)
        audio = inputs[1:]
    paths = expand_inputs(audio)
    if not paths:
        raise RunError(f"no audio files in {' '.join(audio)}")
    results, skipped = predict_many(predictor.predict, paths,
                                    lambda line: err_console.print(line, markup=False, soft_wrap=True))
    written = write_results(results, out, as_json, typer.echo)
    for path in written:
        err_console.print(f"wrote {path}", markup=False)
    if skipped:
        err_console.print(f"{len(skipped)} of {len(paths)} files skipped", markup=False)
        raise typer.Exit(1)
