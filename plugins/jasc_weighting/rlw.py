"""Random loss weighting (Lin et al., TMLR 2022): fresh random task weights every step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import TASKS, EpochContext, StepContext, Weighting
from jasc_weighting.task_weights import EpochWeights, base_weights, step_seed, weighted_sum


def random_weights(tasks: list[str], seed: int) -> dict[str, float]:
    """K * softmax(eps), eps ~ N(0, 1) per task, drawn from a generator seeded by ``seed`` (one seed per step).

    Seeding by step needs no saved state: a resumed run and a rerun see the same weights. Each task draws by its
    index among the known tasks, so dropping a task does not change another's eps.
    """
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(len(TASKS), generator=generator, dtype=torch.float64)
    index = {task: TASKS.index(task) if task in TASKS else len(TASKS) - 1 for task in tasks}
    chosen = torch.stack([eps[index[task]] for task in tasks])
    weights = len(tasks) * torch.softmax(chosen, dim=0)
    return {task: float(w) for task, w in zip(tasks, weights, strict=True)}


class RandomLossWeighting(Weighting):
    """Random loss weighting: lambda = K softmax(eps), eps ~ N(0, I) drawn each step (Lin et al.), times alpha, beta."""

    name = "rlw"

    class Config(BaseModel):
        alpha: float = Field(1.0, ge=0, description="base weight of the scene loss, multiplied by the random lambda")
        beta: float = Field(1.0, ge=0, description="base weight of the event loss, multiplied by the random lambda")
        seed: int | None = Field(None, description="seed of the weight draws (default: the run's seed)")

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        super().__init__(config)
        self._epoch_weights = EpochWeights()

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        seed = step_seed(self.config.seed, context)
        # Softmax over the tasks present only: a batch with one task gives it lambda 1 (renormalised, not zeroed).
        lam = random_weights(list(losses), seed)
        base = base_weights(self.config)
        weights = {task: base.get(task, 1.0) * lam[task] for task in losses}
        self._epoch_weights.record(weights, self.training)
        return weighted_sum(losses, weights)

    def on_epoch_end(self, context: EpochContext) -> None:
        self._epoch_weights.end_epoch()

    def effective_weights(self) -> dict[str, float]:
        """Mean weight (base times lambda) over the steps of the epoch in progress (or of the last epoch)."""
        return self._epoch_weights.current()

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_weights": self._epoch_weights.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # A checkpoint of an earlier release also has "calls", a step counter that context.step replaced.
        self._epoch_weights.load_state_dict(state.get("epoch_weights", {}))
