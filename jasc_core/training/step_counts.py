"""How many optimiser steps trained each task, per phase and in all: what a step-matched comparison of schedules
states beside its figures (run.json ``steps``, and the line printed at the end of training).

A task's steps are the optimiser steps in which its loss counted (``history.json``'s per-epoch ``task_steps``): in
SoftMTL every step trains every task, in HardMTL each task trains on its share of the alternation, in FreezeMTL each
task in its own phase. Steps whose batches held no clip labelled for a task do not count for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jasc_core.contract.json_types import JSONMapping, JSONObject


def steps_trained(history: Sequence[JSONMapping]) -> JSONObject:
    """``{"total": N, "tasks": {task: n}, "phases": {phase: {"steps": n, "tasks": {task: n}}}}`` from the epoch
    records of ``history.json`` (phases in the order they ran)."""
    total, tasks, phases = 0, {}, {}
    previous_step = 0
    for record in history:
        steps = int(record["step"]) - previous_step  # ``step`` is the run's step count at the epoch's end
        previous_step = int(record["step"])
        phase = phases.setdefault(str(record.get("phase", "train")), {"steps": 0, "tasks": {}})
        phase["steps"] += steps
        total += steps
        for task, n in record.get("task_steps", {}).items():
            tasks[task] = tasks.get(task, 0) + int(n)
            phase["tasks"][task] = phase["tasks"].get(task, 0) + int(n)
    return {"total": total, "tasks": tasks, "phases": phases}


def steps_line(counts: JSONMapping) -> str:
    """One console line: ``optimiser steps: 670 (event 670, scene 670)``, per phase when there are several."""
    def tasks_text(tasks: Mapping[str, int]) -> str:
        return ", ".join(f"{task} {n}" for task, n in sorted(tasks.items()))

    line = f"optimiser steps: {counts['total']} ({tasks_text(counts['tasks'])})"
    if len(counts["phases"]) > 1:
        line += "; by phase: " + "; ".join(f"{name} {phase['steps']} ({tasks_text(phase['tasks'])})"
                                          for name, phase in counts["phases"].items())
    return line
