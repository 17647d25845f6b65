"""``jasc postprocess tune``: per-class median filter lengths tuned on a validation split, stored in the run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jasc_core.console import output_console

postprocess_app = typer.Typer(no_args_is_help=True, help="Tune a run's event post-processing on validation data.")
err_console = output_console(stderr=True, highlight=False)


@postprocess_app.command("tune")
def tune_command(
    run_dir: Annotated[Path, typer.Argument(help="The run folder.", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="Split to tune on (never the evaluation split).")] = "val",
) -> None:
    """Choose each event class's median filter length on SPLIT (median_filters.json); later `jasc evaluate` and
    `jasc predict` of the run use them."""
    from jasc_core.errors import JascError
    from jasc_core.evaluation.median_tuning import tune_median_filters

    try:
        lengths = tune_median_filters(run_dir, split)
    except JascError as error:
        err_console.print(f"error: {error}")
        raise typer.Exit(2) from None
    for label, seconds in lengths.items():
        print(f"{label}\t{seconds:g} s")
