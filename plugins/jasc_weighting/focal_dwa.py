"""MFL's focal task losses (001 Eq. 5-6) weighted by DWA's lambda (000): the two dynamic schemes stacked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import EpochContext, StepContext, Weighting
from jasc_weighting.dwa import DynamicWeightAverage
from jasc_weighting.focal import MultiFocal, Reduction


class MultiFocalDWA(Weighting):
    """Multi-focal losses (001 Eq. 5-6) weighted by dynamic weight average (alpha * lambda, beta * lambda)."""

    name = "mfl_dwa"

    class Config(BaseModel):
        alpha: float = Field(0.001, ge=0, description="base weight of the scene focal loss, multiplied by lambda")
        beta: float = Field(1.0, ge=0, description="base weight of the event focal loss, multiplied by lambda")
        gamma: float = Field(1.0, ge=0, description="focusing parameter on event positives (001 Eq. 6)")
        zeta: float = Field(0.0625, ge=0, description="focusing parameter on event negatives (001 Eq. 6)")
        eta: float = Field(0.5, ge=0, description="focusing parameter of the scene loss (001 Eq. 5)")
        reduction: Reduction = Field("sum", description="focal loss reduction, as in 'mfl'")
        temperature: float = Field(2.0, gt=0, description="DWA softmax temperature T")

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        # Composition: MFL supplies the task losses (its alpha, beta unused), DWA the weights on top of alpha, beta.
        self.focal = MultiFocal({"gamma": cfg.gamma, "zeta": cfg.zeta, "eta": cfg.eta, "reduction": cfg.reduction})
        self.dwa = DynamicWeightAverage({"alpha": cfg.alpha, "beta": cfg.beta, "temperature": cfg.temperature})

    def train(self, mode: bool = True) -> MultiFocalDWA:
        # The loop switches this scheme only; the two it is composed of record statistics by their own flags.
        self.focal.train(mode)
        self.dwa.train(mode)
        return super().train(mode)

    def task_losses(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.focal.task_losses(outputs, targets)

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        # DWA sees the unweighted focal losses: lambda follows their descent rate.
        return self.dwa.combine(losses, context)

    def on_epoch_end(self, context: EpochContext) -> None:
        self.dwa.on_epoch_end(context)
        self.focal.on_epoch_end(context)

    def effective_weights(self) -> dict[str, float]:
        """alpha * lambda * mean modulation (beta for event): the total multiplier of each task's cross-entropy."""
        modulation = self.focal.modulation()
        return {task: w * modulation.get(task, 1.0) for task, w in self.dwa.effective_weights().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"focal": self.focal.state_dict(), "dwa": self.dwa.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.focal.load_state_dict(state.get("focal", {}))
        self.dwa.load_state_dict(state.get("dwa", {}))
