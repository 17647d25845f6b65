"""Constant task weights: the conventional multitask loss of 001 Eq. 3."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import StepContext, Weighting
from jasc_weighting.task_weights import base_weights, weighted_sum


class Constant(Weighting):
    """Constant task weights: L = alpha * L_scene + beta * L_event (001 Eq. 3)."""

    name = "constant"

    class Config(BaseModel):
        alpha: float = Field(1.0, ge=0, description="weight of the scene loss (001 Eq. 3; 001's recipes use 0.001)")
        beta: float = Field(1.0, ge=0, description="weight of the event loss (001 Eq. 3)")

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        # 001 Eq. 3. The weights are not normalised, so a batch lacking one task simply has one term less: the
        # expected objective over batches stays alpha * L_scene + beta * L_event.
        return weighted_sum(losses, base_weights(self.config))

    def effective_weights(self) -> dict[str, float]:
        return base_weights(self.config)
