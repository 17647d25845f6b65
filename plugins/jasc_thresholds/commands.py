"""``jasc thresholds``: threshold tuning from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jasc_core.errors import ConfigError
from jasc_thresholds.bench import load_bench_file, run_bench
from jasc_thresholds.metrics import METRICS

thresholds_app = typer.Typer(
    name="thresholds", help="Tune per-class decision thresholds (002: SGL-Thresh and baselines).", no_args_is_help=True
)


def _registered_methods() -> list[str]:
    """Every registered optimiser: this plugin's in 002's table order, then any other plugin's by name."""
    from jasc_core import components
    from jasc_thresholds import OPTIMIZERS

    names = [info.name for info in components("thresholds")]
    own = [cls.name for cls in OPTIMIZERS if cls.name in names]
    return own + [name for name in names if name not in own]


@thresholds_app.command("bench")
def bench_command(
    file: Annotated[Path, typer.Argument(help="an .npz with val_scores, val_targets, eval_scores, eval_targets")],
    method: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help="optimiser to compare (repeat the option; default: every registered one)"),
    ] = None,
    metric: Annotated[str, typer.Option(help="F1 the optimisers maximise on the validation part: micro or macro")] = (
        "micro"
    ),
    init: Annotated[
        float | None,
        typer.Option(help="initial threshold of every method (fixed's value); default: each method's own default"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON instead of a table")] = False,
) -> None:
    """Tune thresholds on the validation part of FILE and report eval micro-F1 (%) and tuning time per method."""
    if metric not in METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    arrays = load_bench_file(file)
    rows = run_bench(arrays, method or _registered_methods(), metric=metric, init=init)
    if as_json:
        typer.echo(json.dumps({"file": str(file), "rows": rows}, indent=2))
        return
    from rich.table import Table

    from jasc_core.api import output_console

    table = Table(title=f"{file.name}: tuned on val ({metric}-F1), scored on eval")
    for column in ("method", f"val {metric}-F1 %", "eval micro-F1 %", "eval macro-F1 %", "time s"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        table.add_row(
            row["method"],
            f"{row['val_f1']:.2f}",
            f"{row['eval_micro_f1']:.2f}",
            f"{row['eval_macro_f1']:.2f}",
            f"{row['seconds']:.3f}",
        )
    output_console().print(table)


@thresholds_app.command("tune")
def tune_command(
    run_dir: Annotated[Path, typer.Argument(help="a run folder written by `jasc run`")],
    method: Annotated[str, typer.Option("--method", "-m", help="registered threshold optimiser, e.g. sgl")] = "sgl",
    split: Annotated[str, typer.Option(help="split whose frame scores the thresholds are fitted on")] = "val",
    metric: Annotated[str, typer.Option(help="F1 to maximise: micro or macro")] = "micro",
    level: Annotated[
        str,
        typer.Option(help="what the thresholds decide on: frame (frame-level F1) or segment (1-s segment-based F1)"),
    ] = "frame",
) -> None:
    """Fit per-class event thresholds on a run's split and store them in the run (thresholds.json).

    `jasc evaluate RUN_DIR` and later predictions use the stored thresholds instead of evaluate.threshold.
    """
    from rich.table import Table

    from jasc_core import component
    from jasc_core.api import output_console, tune_thresholds

    if metric not in METRICS:
        raise ConfigError(f"--metric {metric}: expected one of {', '.join(METRICS)}")
    cls = component("thresholds", method)
    block = {"name": method, **({"metric": metric} if "metric" in cls.Config.model_fields else {})}
    values = tune_thresholds(run_dir, block, split=split, level=level)
    stored = json.loads((Path(run_dir) / "thresholds.json").read_text())
    table = Table(title=f"{method} thresholds ({level} {metric}-F1 on '{split}'), stored in {run_dir}/thresholds.json",
                  title_justify="left")
    table.add_column("event class")
    table.add_column("threshold", justify="right")
    for label, value in zip(stored.get("labels", []), values, strict=False):
        table.add_row(str(label), f"{value:.3f}")
    output_console().print(table)
