"""Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018): learned per-task log-variances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from jasc_core import TASKS, EpochContext, StepContext, Weighting
from jasc_weighting.task_weights import EpochWeights, base_weights


class Uncertainty(Weighting):
    """Uncertainty weighting: L = sum_k exp(-s_k) w_k L_k + s_k with learned log-variances s_k (Kendall et al.)."""

    name = "uncertainty"

    class Config(BaseModel):
        alpha: float = Field(1.0, ge=0, description="base weight of the scene loss inside exp(-s_scene)")
        beta: float = Field(1.0, ge=0, description="base weight of the event loss inside exp(-s_event)")
        init: float = Field(0.0, description="initial log-variance s_k of every task")

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        super().__init__(config)
        # Created up front for every task the toolkit knows, so the engine can put them in its optimiser at build
        # time; a task that never appears keeps its initial value (its term is never in the loss).
        self.log_vars: dict[str, nn.Parameter] = {
            task: nn.Parameter(torch.tensor(float(self.config.init))) for task in TASKS
        }
        self._epoch_weights = EpochWeights()

    def parameters(self) -> list[nn.Parameter]:
        return list(self.log_vars.values())

    def to(self, device: torch.device | str) -> Uncertainty:
        """Move the log-variances in place (the same Parameter objects, so an optimiser holding them stays valid)."""
        for param in self.log_vars.values():
            param.data = param.data.to(device)
        return self

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        if not losses:
            raise ValueError("no task losses to combine: the batch has no labels for any trained task")
        device = next(iter(losses.values())).device
        if any(p.device != device for p in self.log_vars.values()):
            self.to(device)  # first call on an accelerator: follow the losses
        base = base_weights(self.config)
        total: Tensor | None = None
        applied = {}
        for task, loss in losses.items():
            s = self.log_vars[task]
            applied[task] = base.get(task, 1.0) * float(torch.exp(-s.detach()))
            # One form for both tasks: exp(-s) L + s (regularised by s so that s cannot grow without bound).
            # A task absent from the batch contributes neither term, so its s gets no gradient this step.
            term = torch.exp(-s) * base.get(task, 1.0) * loss + s
            total = term if total is None else total + term
        assert total is not None
        self._epoch_weights.record(applied, self.training)
        return total

    def on_epoch_end(self, context: EpochContext) -> None:
        self._epoch_weights.end_epoch()

    def effective_weights(self) -> dict[str, float]:
        """Mean over the epoch's steps of base weight times exp(-s_k) (the current values before any step)."""
        weights = self._epoch_weights.current()
        if weights:
            return weights
        base = base_weights(self.config)
        return {task: base[task] * float(torch.exp(-s.detach())) for task, s in self.log_vars.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "log_vars": {task: float(s.detach()) for task, s in self.log_vars.items()},
            "epoch_weights": self._epoch_weights.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._epoch_weights.load_state_dict(state.get("epoch_weights", {}))
        for task, value in state.get("log_vars", {}).items():
            if task in self.log_vars:
                with torch.no_grad():
                    self.log_vars[task].fill_(float(value))
