"""``jasc sweep``: a recipe run over a grid of overrides times several seeds, then aggregated (mean ± std).

Each run is an ordinary ``jasc run`` in its own process and run folder, executed by a launcher (local processes,
Ray tasks, Slurm jobs), so a sweep is no more than a plan, a launcher and an aggregation over ``metrics.json``:

    <sweep>/
      sweep.json        the plan (recipe, grid, fixed overrides, seeds); a resumed sweep must find it unchanged
      runs/<label>/     one run folder per configuration and seed
      logs/<label>.log  each run's console output
      slurm/            submitit's job scripts and logs (--launcher slurm)
      summary.csv       mean, std and count of every metric per configuration
      summary.json      the same, plus the per-run values and the failed runs with their logs
      summary.png       scene and event scores against the first numeric grid axis, one line per other setting
                        (the layout of 001 Fig. 2)

An interrupted sweep resumes on any launcher: finished runs are skipped, interrupted ones continue with
``jasc run --resume``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from jasc_core.contract.json_types import JSONObject
from jasc_core.errors import RunError
from jasc_core.recipes.model import load_recipe
from jasc_core.sweeps.launchers import Launcher, LauncherConfig, check_available, make_launcher
from jasc_core.sweeps.plan import finished, jasc_run_command, parse_grid, plan_runs, write_or_check_plan
from jasc_core.sweeps.summary import aggregate, write_summary


def threads_per_run(config: LauncherConfig, jobs: int, threads: int | None) -> int:
    """CPU threads of each run: as given; else the CPUs a Ray task or Slurm job reserves; else, locally, the cores
    divided by the runs in parallel."""
    if threads:
        return threads
    if config.name != "local":
        return max(1, int(config.cpus_per_run + 0.999))
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_sweep(
    recipe_path: Path,
    grid: Sequence[str],
    *,
    sets: Sequence[str] = (),
    seeds: int = 3,
    jobs: int = 1,
    out: Path,
    metrics: Sequence[str] = (),
    threads: int | None = None,
    launcher: LauncherConfig | None = None,
    echo: Callable[[str], None] = print,
    make: Callable[[LauncherConfig, int, Path], Launcher] = make_launcher,
) -> JSONObject:
    """Plan, run (``jobs`` at a time, ``threads`` CPU threads each, on ``launcher``) and aggregate a sweep; returns
    the summary. A failed run is listed in the summary with its log; the others still run and are aggregated."""
    config = launcher or LauncherConfig()
    check_available(config)
    axes = parse_grid(grid)
    runs = plan_runs(axes, seeds)
    # Validate every configuration before any process starts, so a bad grid value fails in seconds.
    for run in {r.config: r for r in runs}.values():
        load_recipe(recipe_path, [*sets, *run.sets()])
    out = Path(out)
    plan = {"recipe": str(Path(recipe_path).resolve()), "grid": [[p, v] for p, v in axes], "sets": list(sets),
            "seeds": seeds}
    write_or_check_plan(out, plan)

    pending = [run for run in runs if not finished(out / "runs" / run.label)]
    echo(f"sweep {out}: {len(runs)} runs ({len(runs) - len(pending)} already finished), {jobs} at a time "
         f"({config.name})")
    per_run = threads_per_run(config, jobs, threads)
    commands = [jasc_run_command(recipe_path, [*sets, *run.sets()], out / "runs" / run.label,
                                 out / "logs" / f"{run.label}.log", per_run, run.label) for run in pending]
    failures: dict[str, dict[str, str]] = {}
    if commands:
        with make(config, jobs, out) as pool:
            pool.submit(commands)
            while pool.pending:
                command, error = pool.next_done()
                if error:
                    failures[command.label] = {"error": error, "log": command.log}
                    echo(f"  failed   {command.label}: {error} (log: {command.log})")
                else:
                    echo(f"  finished {command.label}")
    summary = aggregate(out, runs, metrics)
    summary["failures"] = failures
    write_summary(out, summary)
    if failures:
        raise RunError(f"{len(failures)} of {len(runs)} runs failed (logs in {out / 'logs'}, listed in "
                       f"{out / 'summary.json'}); run the same command again to retry them")
    return summary
