"""A sweep's results: mean, std and count of every metric per configuration (summary.csv, summary.json), and the
plot of 001 Fig. 2 (summary.png). Read from the run folders only, so they are the same whatever launcher ran them.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.tasks import TASKS
from jasc_core.runs.atomic_files import atomic_write
from jasc_core.sweeps.plan import SweepRun, finished

#: Metrics shown in the table and plot when present (001 Table IV's columns), as flattened ``metrics.json`` keys.
DEFAULT_METRICS = ("scene/accuracy", "scene/macro_f1", "event/frame_micro_f1", "event/frame_macro_f1")


def flatten(metrics: JSONObject, prefix: str = "") -> dict[str, float]:
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


def aggregate(out: Path, runs: Sequence[SweepRun], metrics: Sequence[str] = ()) -> JSONObject:
    """Mean, sample std and count of every metric per configuration, over the finished runs."""
    by_config: dict[tuple, list[tuple[int, dict[str, float]]]] = {}
    for run in runs:
        run_dir = out / "runs" / run.label
        if finished(run_dir):
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


def write_summary(out: Path, summary: JSONObject) -> None:
    with atomic_write(out / "summary.json") as handle:
        handle.write(json.dumps(summary, indent=2))
    keys = sorted(set().union(*(row["metrics"] for row in summary["rows"]))) if summary["rows"] else []
    with atomic_write(out / "summary.csv", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*summary["axes"], "n", *[f"{k}_{s}" for k in keys for s in ("mean", "std")]])
        for row in summary["rows"]:
            n = max((m["n"] for m in row["metrics"].values()), default=0)
            cells = [row["metrics"].get(k, {}) for k in keys]
            writer.writerow([*[row["config"][a] for a in summary["axes"]], n,
                             *[c.get(s, "") for c in cells for s in ("mean", "std")]])
    if summary["rows"]:
        plot_summary(summary, out / "summary.png")


def plot_summary(summary: JSONObject, path: Path) -> None:
    """Score against the first numeric grid axis (log scale when it spans decades), one line per other setting,
    error bars = std over seeds; one panel per task (001 Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_paths = summary["axes"]
    numeric = [a for a in axes_paths if all(isinstance(r["config"][a], int | float) for r in summary["rows"])]
    shown = summary["metrics_shown"]
    panels = [task for task in TASKS if any(m.startswith(task + "/") for m in shown)] or ["all"]
    fig, axs = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    x_axis = numeric[0] if numeric else None
    others = [a for a in axes_paths if a != x_axis]
    groups: dict[str, list[JSONObject]] = {}
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
