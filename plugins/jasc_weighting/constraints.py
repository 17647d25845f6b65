"""Recipe checks for the gradient-based schemes: they need the tasks' gradients of the same step."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from jasc_core import component


def heads_in(recipe: Any) -> list[str]:
    """The tasks the recipe's model has a head for."""
    heads = getattr(getattr(recipe, "model", None), "heads", None)
    if heads is None:
        return []
    items = heads.items() if isinstance(heads, dict) else iter(heads)
    return [task for task, block in items if block is not None]


def joint_step_problems(scheme: str, recipe: Any) -> list[str]:
    """Why a gradient-based scheme cannot work in ``recipe`` (empty when it can).

    GradNorm and PCGrad compare the shared-parameter gradients of several tasks within one step, so they need a model
    with at least two heads and a schedule whose steps train the tasks together. A schedule declares that it does
    not with the class attribute ``trains_tasks_jointly = False`` (e.g. alternating single-task steps, or training
    one task after the other); schedules without the attribute are assumed to train jointly.
    """
    problems = []
    tasks = heads_in(recipe)
    if len(tasks) < 2:
        problems.append(
            f"weighting '{scheme}' balances the gradients of several tasks, but the model has only "
            f"{', '.join(tasks) or 'no'} head(s); use 'constant' for a single-task model"
        )
    schedule = getattr(recipe, "schedule", None)
    name = getattr(schedule, "name", None) if isinstance(schedule, BaseModel) or schedule is not None else None
    if name:
        try:
            schedule_cls = component("schedule", name)
        except Exception:  # an unknown schedule is reported by the name check already
            schedule_cls = None
        if schedule_cls is not None and not schedule_cls.trains_tasks_jointly:
            problems.append(
                f"weighting '{scheme}' needs the tasks' gradients in the same step, but schedule '{name}' trains one "
                "task per step; use a loss-based weighting (constant, dwa, mfl, uncertainty, rlw) with it"
            )
    return problems


def check_recipe(scheme: str, block: BaseModel, recipe: BaseModel) -> list[str]:
    """The check the gradient-based schemes run from ``Component.check_recipe``."""
    return joint_step_problems(scheme, recipe)
