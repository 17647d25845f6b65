"""PCGrad (Yu et al., NeurIPS 2020): project away the conflicting component of each task's shared gradient."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import StepContext, Weighting
from jasc_weighting.constraints import joint_step_problems
from jasc_weighting.gradients import flatten, reference_shapes, unflatten
from jasc_weighting.task_weights import base_weights, step_seed, weighted_sum


def project_conflicting(vectors: Mapping[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Gradient surgery: for each task i, for the other tasks j in random order, if g_i . g_j < 0 remove the
    projection of g_i on g_j (g_i -= (g_i . g_j) / |g_j|^2 g_j). Projections use the original g_j (Yu et al. Alg. 1).
    """
    tasks = list(vectors)
    projected = {}
    for task in tasks:
        g = vectors[task].clone()
        others = [t for t in tasks if t != task]
        order = torch.randperm(len(others), generator=generator).tolist() if len(others) > 1 else range(len(others))
        for j in order:
            other = vectors[others[j]]
            dot = torch.dot(g, other)
            norm_sq = torch.dot(other, other)
            if dot < 0 and norm_sq > 0:
                g = g - dot / norm_sq * other
        projected[task] = g
    return projected


class PCGrad(Weighting):
    """PCGrad: per-task shared gradients with conflicting components projected out, then summed (Yu et al.)."""

    name = "pcgrad"
    requires_task_gradients: ClassVar[bool] = True

    @classmethod
    def check_recipe(cls, block: BaseModel, recipe: BaseModel) -> list[str]:
        """Rejects a single-head model and a schedule that trains one task per step (see ``constraints``)."""
        return joint_step_problems(cls.name, recipe)

    class Config(BaseModel):
        alpha: float = Field(1.0, ge=0, description="scene weight (scales its gradient before projection)")
        beta: float = Field(1.0, ge=0, description="event weight (scales its gradient before projection)")

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        super().__init__(config)
        self.conflicts = 0  # steps on which some pair of task gradients conflicted (for the record)
        self.steps = 0

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        # Used by the engine for the task-specific (head) parameters, which see only their own task's gradient.
        return weighted_sum(losses, base_weights(self.config))

    def combine_gradients(
        self, grads: Mapping[str, list[Tensor]], losses: Mapping[str, Tensor], context: StepContext
    ) -> list[Tensor]:
        like = reference_shapes(grads, context)
        base = base_weights(self.config)
        vectors = {task: base.get(task, 1.0) * flatten(g, like) for task, g in grads.items()}
        if not vectors:
            raise ValueError("no task gradients to combine")
        # Projection order is random (Yu et al.); seeded by the step so reruns and resumed runs agree.
        generator = torch.Generator().manual_seed(step_seed(None, context))
        # A batch with one task has nothing to conflict with: its gradient passes unchanged.
        projected = project_conflicting(vectors, generator)
        self.steps += 1
        if any(not torch.equal(projected[t], vectors[t]) for t in vectors):
            self.conflicts += 1
        total = torch.stack(list(projected.values())).sum(0)
        return unflatten(total, like)

    def effective_weights(self) -> dict[str, float]:
        """PCGrad changes directions, not weights: the base weights alpha, beta."""
        return base_weights(self.config)

    def state_dict(self) -> dict[str, Any]:
        return {"conflicts": self.conflicts, "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.conflicts = int(state.get("conflicts", 0))
        self.steps = int(state.get("steps", 0))
