"""Markdown tables from tools/claims_collect.py's results.json (issue 27, docs/schedules.md): per sweep, mean ± std
over its finished runs of each metric in %, the EMA teacher's where runs have one, the optimiser steps per task, and
the mean-teacher arms' validation learning curves.

    python tools/claims_tables.py results.json
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping, Sequence

METRICS = (("ASC accuracy", "scene", ("accuracy",)), ("collar F1", "event", ("collar_f1", "micro")),
           ("segment F1", "event", ("segment_f1", "micro")), ("frame micro-F", "event", ("frame_micro_f1",)),
           ("PSDS1", "event", ("psds1",)))
TABLE3 = ("soft", "hard", "cross_soft", "cross_hard", "freeze_sed_asc", "freeze_asc_sed")
MEAN_TEACHER = ("strong_only", "strong_weak", "mean_teacher")


def value(metrics: Mapping | None, model: str, task: str, path: Sequence[str]) -> float | None:
    node = (metrics or {}).get(model, {}).get(task)
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return 100 * float(node) if isinstance(node, int | float) else None


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {std:.2f}"


def steps_text(runs: list[dict]) -> str:
    steps = [r["steps"] for r in runs if r.get("steps")]
    if not steps:
        return "–"
    phases = steps[0]["phases"]
    if len(phases) > 1:
        return " + ".join(f"{p['steps']} {'/'.join(p['tasks'])}" for p in phases.values())
    return f"{steps[0]['total']} ({', '.join(f'{t} {n}' for t, n in sorted(steps[0]['tasks'].items()))})"


def table(results: Mapping[str, list[dict]], names: Sequence[str], model: str) -> list[str]:
    lines = ["| sweep | runs | steps (per task) | " + " | ".join(m[0] for m in METRICS) + " | train s |",
             "|---|---:|---|" + "---:|" * (len(METRICS) + 1)]
    for name in names:
        runs = [r for r in results.get(name, []) if r.get("metrics") and model in r["metrics"]]
        if not runs:
            lines.append(f"| {name} | 0 | – |" + " – |" * (len(METRICS) + 1))
            continue
        cells = [mean_std([v for r in runs if (v := value(r["metrics"], model, task, path)) is not None])
                 for _, task, path in METRICS]
        seconds = statistics.mean(r["train_seconds"] for r in runs)
        lines.append(f"| {name} | {len(runs)} | {steps_text(runs)} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    return lines


def curves(results: Mapping[str, list[dict]], names: Sequence[str], metric: str = "val/event/frame_micro_f1"
           ) -> list[str]:
    """Mean over seeds of a validation metric at each epoch (every epoch's step count in the header)."""
    histories = {name: [r["history"] for r in results.get(name, []) if r["history"]] for name in names}
    epochs = max((len(h) for hs in histories.values() for h in hs), default=0)
    if not epochs:
        return []
    steps = next(h for hs in histories.values() for h in hs if len(h) == epochs)
    lines = [f"| {metric} at step | " + " | ".join(str(r["step"]) for r in steps) + " |",
             "|---|" + "---:|" * epochs]
    for name, hs in histories.items():
        cells = []
        for e in range(epochs):
            values = [100 * h[e]["val"][metric] for h in hs if len(h) > e and metric in (h[e]["val"] or {})]
            cells.append(f"{statistics.mean(values):.1f}" if values else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(path: str) -> None:
    with open(path) as handle:
        results = json.load(handle)
    print("Table 3, step-matched (student):\n")
    print("\n".join(table(results, TABLE3, "eval")))
    print("\nTable 3, step-matched (EMA teacher of the Cross runs):\n")
    print("\n".join(table(results, ("cross_soft", "cross_hard"), "eval_teacher")))
    print("\nMean teacher vs supervised (student):\n")
    print("\n".join(table(results, MEAN_TEACHER, "eval")))
    print("\nMean teacher vs supervised (EMA teacher):\n")
    print("\n".join(table(results, MEAN_TEACHER, "eval_teacher")))
    print("\nLearning curves (validation, mean over seeds, %):\n")
    print("\n".join(curves(results, MEAN_TEACHER)))


if __name__ == "__main__":
    main(sys.argv[1])
