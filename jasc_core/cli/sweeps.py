"""``jasc sweep`` and ``jasc tune``: thin commands over ``jasc_core.sweeps`` (docs/sweeps.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from jasc_core.console import output_console

if TYPE_CHECKING:  # imported by the commands that use it
    from jasc_core.sweeps.launchers import LauncherConfig

console = output_console()

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a recipe field: PATH=VALUE (YAML scalar or flow mapping); repeatable."),
]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Runs at the same time (processes, Ray tasks "
                                         "or the Slurm array's parallelism).")]
ThreadsOption = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads per run (default: local: "
                                                   "the cores divided by --jobs; ray, slurm: --cpus-per-run).")]
LauncherOption = Annotated[str | None, typer.Option("--launcher", help="Where runs execute: local (processes, the "
                                                    "default), ray or slurm.", show_default=False)]
AddressOption = Annotated[str | None, typer.Option("--address", help="ray: a running cluster (auto, "
                                                   "ray://HOST:10001); default: a local one for this sweep.")]
CpusOption = Annotated[float | None, typer.Option("--cpus-per-run", help="ray, slurm: CPUs per run (default 1).")]
GpusOption = Annotated[float | None, typer.Option("--gpus-per-run", help="ray, slurm: GPUs per run (default 0).")]
PartitionOption = Annotated[str | None, typer.Option("--partition", help="slurm: partition.")]
TimeOption = Annotated[int | None, typer.Option("--time", help="slurm: time limit per run in minutes (default 60).")]
LauncherFileOption = Annotated[Path | None, typer.Option("--launcher-file", help="YAML with a 'launcher:' block "
                                                         "(name, address, partition, setup, slurm_parameters, ...); "
                                                         "flags override it.")]


def _launcher(file: Path | None, name: str | None, address: str | None, cpus: float | None, gpus: float | None,
              partition: str | None, time_min: int | None) -> LauncherConfig:
    from jasc_core.sweeps.launchers import load_launcher_config

    return load_launcher_config(file, name=name, address=address, cpus_per_run=cpus, gpus_per_run=gpus,
                                partition=partition, time_min=time_min)


@contextlib.contextmanager
def _resumable(folder: Path) -> Iterator[None]:
    """Ctrl-C: one line that says how to go on (exit code 130), no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        from jasc_core.errors import RunInterrupted

        raise RunInterrupted(f"interrupted; the same command continues {folder}") from None


def _echo(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def sweep_command(
    recipe: RecipeArg,
    grid: Annotated[list[str], typer.Option("--grid", "-g", help="PATH=V1,V2,... one grid axis; repeatable. Seeds "
                                            "alone: --grid seed=0 --seeds N.")],
    set_: SetOption = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per configuration (0..N-1).")] = 3,
    jobs: JobsOption = 1,
    threads: ThreadsOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Sweep folder (default: runs/sweep-<recipe>).")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="Metric to tabulate (flattened key, "
                                                     "e.g. scene/accuracy); repeatable.")] = None,
    launcher: LauncherOption = None,
    address: AddressOption = None,
    cpus_per_run: CpusOption = None,
    gpus_per_run: GpusOption = None,
    partition: PartitionOption = None,
    time_min: TimeOption = None,
    launcher_file: LauncherFileOption = None,
) -> None:
    """Run a recipe over a grid of overrides times seeds; table, CSV, JSON and plot of mean ± std."""
    from jasc_core.sweeps.sweep import run_sweep

    config = _launcher(launcher_file, launcher, address, cpus_per_run, gpus_per_run, partition, time_min)
    folder = out or Path("runs") / f"sweep-{recipe.stem}"
    with _resumable(folder):
        summary = run_sweep(recipe, grid, sets=set_ or [], seeds=seeds, jobs=jobs, out=folder, metrics=metric or [],
                            threads=threads, launcher=config, echo=_echo)
    table = Table(title=f"sweep {folder} (mean ± std over seeds, %)", title_justify="left")
    for axis in summary["axes"]:
        table.add_column(axis)
    table.add_column("n", justify="right")
    for name in summary["metrics_shown"]:
        table.add_column(name, justify="right")
    for row in summary["rows"]:
        stats = row["metrics"]
        n = max((m["n"] for m in stats.values()), default=0)
        cells = [f"{100 * stats[m]['mean']:.2f} ± {100 * stats[m]['std']:.2f}" if m in stats else "-"
                 for m in summary["metrics_shown"]]
        table.add_row(*[str(row["config"][a]) for a in summary["axes"]], str(n), *cells)
    console.print(table)
    console.print(f"summary: {folder / 'summary.csv'}, {folder / 'summary.json'}, {folder / 'summary.png'}",
                  markup=False)


def tune_command(
    recipe: RecipeArg,
    space: Annotated[list[str], typer.Option("--space", help="PATH=log(LOW,HIGH), float(LOW,HIGH), int(LOW,HIGH) "
                                             "or choice(V1,V2,...): one searched field; repeatable.")],
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="Trials in the study (a resumed study runs "
                                        "the rest).")] = 20,
    metric: Annotated[str | None, typer.Option("--metric", "-m", help="Validation metric to optimise, e.g. "
                                               "val/event/frame_micro_f1 (default: the recipe's "
                                               "train.select_metric).")] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="max or min (default: train.select_mode "
                                                  "for the select metric, min for losses, else max).")] = None,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Tune folder (default: runs/tune-<recipe>).")] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe or random.")] = "tpe",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler.")] = 0,
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="Median pruning after each epoch.")] = True,
    startup_trials: Annotated[int, typer.Option("--startup-trials", min=0, help="Trials never pruned, and sampled "
                                                "at random before TPE starts.")] = 4,
    warmup_epochs: Annotated[int, typer.Option("--warmup-epochs", min=0, help="Epochs of each trial before it may "
                                               "be pruned.")] = 0,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Trial 0 is the recipe's own values "
                                           "(when inside the space).")] = True,
    jobs: JobsOption = 1,
    threads: ThreadsOption = None,
    launcher: LauncherOption = None,
    address: AddressOption = None,
    cpus_per_run: CpusOption = None,
    gpus_per_run: GpusOption = None,
    partition: PartitionOption = None,
    time_min: TimeOption = None,
    launcher_file: LauncherFileOption = None,
) -> None:
    """Search recipe fields with Optuna (TPE, median pruning); writes trials.csv, best.yaml and study.png."""
    from jasc_core.errors import ConfigError
    from jasc_core.sweeps.tune import run_tune

    if sampler not in ("tpe", "random") or direction not in (None, "max", "min"):
        raise ConfigError("--sampler: tpe or random; --direction: max or min")
    config = _launcher(launcher_file, launcher, address, cpus_per_run, gpus_per_run, partition, time_min)
    folder = out or Path("runs") / f"tune-{recipe.stem}"
    with _resumable(folder):
        summary = run_tune(recipe, space, trials=trials, out=folder, sets=set_ or [], metric=metric,
                           direction=direction, jobs=jobs, threads=threads, launcher=config, sampler=sampler,
                           seed=seed, prune=prune, startup_trials=startup_trials, warmup_epochs=warmup_epochs,
                           baseline=baseline, echo=_echo)
    best = summary["best"]
    if best is None:
        console.print("no trial completed; see trials.csv and the logs", markup=False)
        return
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items())
    console.print(f"best: trial {best['number']}, {summary['metric']} = {best['score']:.4f} ({params})",
                  markup=False, highlight=False)
    console.print(f"best recipe: {best['recipe']}; study: {folder / 'trials.csv'}, {folder / 'study.png'}",
                  markup=False)
