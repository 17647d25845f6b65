"""Sweeps: a recipe run over a grid of overrides times several seeds, then aggregated (mean ± std per configuration).

Each run is an ordinary ``jasc run`` in its own process and run folder, so a sweep is no more than a plan, a pool of
processes and an aggregation over ``metrics.json`` files:

    <sweep>/
      sweep.json        the plan (recipe, grid, fixed overrides, seeds); a resumed sweep must find it unchanged
      runs/<label>/     one run folder per configuration and seed
      logs/<label>.log  each run's console output
      summary.csv       mean, std and count of every metric per configuration
      summary.json      the same, plus the per-run values
      summary.png       scene and event scores against the first numeric grid axis, one line per other setting
                        (the layout of 001 Fig. 2)

An interrupted sweep resumes: finished runs are skipped, interrupted ones continue with ``jasc run --resume``.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jasc_core.errors import ConfigError, RunError
from jasc_core.recipes.files import parse_set
from jasc_core.recipes.model import load_recipe

#: Metrics shown in the table and plot when present (001 Table IV's columns), as flattened ``metrics.json`` keys.
DEFAULT_METRICS = ("scene/accuracy", "scene/macro_f1", "event/frame_micro_f1", "event/frame_macro_f1")
PLAN_FILE = "sweep.json"


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a configuration (grid values) and a seed."""

    config: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def config_label(self) -> str:
        return ",".join(f"{path}={_short(value)}" for path, value in self.config) or "base"

    @property
    def label(self) -> str:
        return _safe(f"{self.config_label}__seed{self.seed}")

    def sets(self) -> list[str]:
        return [f"{path}={_yaml_scalar(value)}" for path, value in self.config] + [f"seed={self.seed}"]


def parse_grid(expressions: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``["weighting.alpha=0.001,0.01"]`` -> ``[("weighting.alpha", [0.001, 0.01])]`` (values parsed as YAML)."""
    axes = []
    for expression in expressions:
        path, sep, values = expression.partition("=")
        if not sep or not path.strip() or not values.strip():
            raise ConfigError(f"--grid {expression}: expected PATH=V1,V2,..., e.g. weighting.alpha=0.001,0.01")
        parsed = [parse_set(f"{path}={value.strip()}")[1] for value in values.split(",")]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"--grid {expression}: a value is repeated")
        axes.append((path.strip(), parsed))
    paths = [path for path, _ in axes]
    if len(set(paths)) != len(paths):
        raise ConfigError(f"--grid: the same path twice ({', '.join(paths)})")
    return axes


def plan_runs(axes: Sequence[tuple[str, list[Any]]], seeds: int) -> list[SweepRun]:
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: need at least one seed")
    configs = list(itertools.product(*[[(path, value) for value in values] for path, values in axes]))
    # Seed-major order: a sweep stopped part-way has covered the whole grid with its first seeds.
    return [SweepRun(tuple(config), seed) for seed in range(seeds) for config in configs]


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
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Plan, run (``jobs`` processes at a time, ``threads`` CPU threads each) and aggregate a sweep; returns the
    summary. ``threads`` defaults to the cores divided by ``jobs``; give it when several sweeps share the cores."""
    axes = parse_grid(grid)
    runs = plan_runs(axes, seeds)
    # Validate every configuration before any process starts, so a bad grid value fails in seconds.
    for run in {r.config: r for r in runs}.values():
        load_recipe(recipe_path, [*sets, *run.sets()])
    plan = {"recipe": str(Path(recipe_path).resolve()), "grid": [[p, v] for p, v in axes], "sets": list(sets),
            "seeds": seeds}
    _write_or_check_plan(out, plan)

    pending = [run for run in runs if not _finished(out / "runs" / run.label)]
    echo(f"sweep {out}: {len(runs)} runs ({len(runs) - len(pending)} already finished), {jobs} at a time")
    failures: dict[str, str] = {}
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_execute, recipe_path, run, sets, out, threads): run for run in pending}
        for future in as_completed(futures):
            run = futures[future]
            error = future.result()
            if error:
                failures[run.label] = error
                echo(f"  failed   {run.label}: {error}")
            else:
                echo(f"  finished {run.label}")
    summary = aggregate(out, runs, metrics)
    summary["failures"] = failures
    write_summary(out, summary)
    if failures:
        raise RunError(f"{len(failures)} of {len(runs)} runs failed (logs in {out / 'logs'}); "
                       f"run the same command again to retry them")
    return summary


def _write_or_check_plan(out: Path, plan: dict[str, Any]) -> None:
    path = out / PLAN_FILE
    if path.exists():
        old = json.loads(path.read_text())
        if old != plan:
            raise RunError(f"{out} holds a different sweep ({path}); choose another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2))


def _finished(run_dir: Path) -> bool:
    marker = run_dir / "run.json"
    if not (marker.is_file() and (run_dir / "metrics.json").is_file()):
        return False
    try:
        return json.loads(marker.read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def _execute(recipe_path: Path, run: SweepRun, sets: Sequence[str], out: Path, threads: int) -> str:
    """One run in its own process; returns an error line, or '' on success."""
    run_dir = out / "runs" / run.label
    command = [sys.executable, "-m", "jasc_core.cli", "run", str(recipe_path)]
    for expression in [*sets, *run.sets()]:
        command += ["--set", expression]
    if run_dir.exists() and (run_dir / "checkpoints" / "last.pt").is_file():
        command += ["--resume", str(run_dir)]
    else:
        shutil.rmtree(run_dir, ignore_errors=True)  # started but never checkpointed: nothing to keep
        command += ["--out", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log = out / "logs" / f"{run.label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {result.returncode}"
    return ""


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def run_metrics(run_dir: Path) -> dict[str, float]:
    """A finished run's final metrics, flattened; with one evaluated split its name is dropped from the keys."""
    data = json.loads((run_dir / "metrics.json").read_text())
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), dict):
        data = next(iter(data.values()))
    return flatten(data)


def aggregate(out: Path, runs: Sequence[SweepRun], metrics: Sequence[str] = ()) -> dict[str, Any]:
    """Mean, sample std and count of every metric per configuration, over the finished runs."""
    by_config: dict[tuple, list[tuple[int, dict[str, float]]]] = {}
    for run in runs:
        run_dir = out / "runs" / run.label
        if _finished(run_dir):
            by_config.setdefault(run.config, []).append((run.seed, run_metrics(run_dir)))
    rows = []
    for config, results in by_config.items():
        keys = sorted(set().union(*(values for _, values in results)))
        stats = {}
        for key in keys:
            values = [v[key] for _, v in results if key in v]
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
            stats[key] = {"mean": mean, "std": std, "n": len(values)}
        rows.append({"config": dict(config), "label": SweepRun(config, 0).config_label, "metrics": stats,
                     "runs": {str(seed): values for seed, values in results}})
    shown = list(metrics) or [m for m in DEFAULT_METRICS if any(m in row["metrics"] for row in rows)]
    return {"axes": [path for path, _ in (runs[0].config if runs else ())], "metrics_shown": shown, "rows": rows}


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    keys = sorted(set().union(*(row["metrics"] for row in summary["rows"]))) if summary["rows"] else []
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*summary["axes"], "n", *[f"{k}_{s}" for k in keys for s in ("mean", "std")]])
        for row in summary["rows"]:
            n = max((m["n"] for m in row["metrics"].values()), default=0)
            cells = [row["metrics"].get(k, {}) for k in keys]
            writer.writerow([*[row["config"][a] for a in summary["axes"]], n,
                             *[c.get(s, "") for c in cells for s in ("mean", "std")]])
    if summary["rows"]:
        plot_summary(summary, out / "summary.png")


def plot_summary(summary: dict[str, Any], path: Path) -> None:
    """Score against the first numeric grid axis (log scale when it spans decades), one line per other setting,
    error bars = std over seeds; one panel per task (001 Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_paths = summary["axes"]
    numeric = [a for a in axes_paths if all(isinstance(r["config"][a], int | float) for r in summary["rows"])]
    shown = summary["metrics_shown"]
    panels = [task for task in ("scene", "event") if any(m.startswith(task + "/") for m in shown)] or ["all"]
    fig, axs = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    x_axis = numeric[0] if numeric else None
    others = [a for a in axes_paths if a != x_axis]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in summary["rows"]:
        groups.setdefault(",".join(f"{a}={row['config'][a]}" for a in others), []).append(row)
    for ax, task in zip(axs[0], panels, strict=True):
        for metric in [m for m in shown if task == "all" or m.startswith(task + "/")]:
            for name, rows in groups.items():
                rows = sorted(rows, key=lambda r: r["config"][x_axis] if x_axis else 0)
                xs = [r["config"][x_axis] if x_axis else i for i, r in enumerate(rows)]
                ys = [100 * r["metrics"].get(metric, {}).get("mean", math.nan) for r in rows]
                es = [100 * r["metrics"].get(metric, {}).get("std", 0.0) for r in rows]
                label = f"{name} {metric.split('/', 1)[-1]}".strip()  # a single-axis sweep: the metric alone
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
        if x_axis:
            values = [r["config"][x_axis] for r in summary["rows"]]
            if min(values) > 0 and max(values) / min(values) >= 100:
                ax.set_xscale("log")
            ax.set_xlabel(x_axis)
        ax.set_ylabel("score (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _short(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._=,-+" else "_" for c in label)
