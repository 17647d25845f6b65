"""``jasc postprocess tune``: a run's event post-processing tuned on a validation split and stored in the run:
per-class median filter lengths (``median_filters.json``) or SEBB parameters (``sebb.json``, optional ``sebbs``)."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from jasc_core.console import output_console

postprocess_app = typer.Typer(no_args_is_help=True, help="Tune a run's event post-processing on validation data.")
err_console = output_console(stderr=True, highlight=False)


class Method(str, Enum):
    median = "median"
    sebb = "sebb"


def _number(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:g}"


@postprocess_app.command("tune")
def tune_command(
    run_dir: Annotated[Path, typer.Argument(help="The run folder.", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="Split to tune on (never the evaluation split).")] = "val",
    method: Annotated[Method, typer.Option(
        "--method", help="median: each class's median filter length (median_filters.json); sebb: sound event "
        "bounding boxes tuned by the sebbs package for PSDS1 and for collar F1 (sebb.json; pip install 'jasc[sebb]')."
    )] = Method.median,
) -> None:
    """Tune the event post-processing on SPLIT; later `jasc evaluate` and `jasc predict` of the run use it."""
    from jasc_core.errors import JascError
    from jasc_core.evaluation.median_tuning import tune_median_filters
    from jasc_core.evaluation.sebb_tuning import tune_sebb

    try:
        if method is Method.median:
            for label, seconds in tune_median_filters(run_dir, split).items():
                print(f"{label}\t{seconds:g} s")
            return
        params = tune_sebb(run_dir, split)
    except JascError as error:
        err_console.print(f"error: {error}", markup=False)
        raise typer.Exit(2) from None
    print("objective\tclass\tstep filter (s)\tmerge abs\tmerge rel\tdetection threshold")
    for objective, p in params.items():
        for label in p.step_filter_length:
            threshold = "-" if p.detection_threshold is None else _number(p.detection_threshold[label])
            print(f"{objective}\t{label}\t{p.step_filter_length[label]:g}\t{_number(p.merge_threshold_abs[label])}\t"
                  f"{_number(p.merge_threshold_rel[label])}\t{threshold}")
