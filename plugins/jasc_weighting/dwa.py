"""Dynamic weight average (Liu et al., CVPR 2019; compared with MFL in 000): weights from the loss descent rate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import EpochContext, StepContext, Weighting
from jasc_weighting.task_weights import TaskMeans, base_weights, renormalise, weighted_sum


def dwa_weights(
    history: Sequence[Mapping[str, float]], tasks: Sequence[str], temperature: float = 2.0
) -> dict[str, float]:
    """DWA's lambda_k for the epoch after ``history`` (a list of per-epoch mean unweighted losses per task).

    lambda_k(t) = K exp(w_k / T) / sum_i exp(w_i / T), w_k = L_k(t-1) / L_k(t-2); lambda = 1 while fewer than two
    epochs are known. A task whose loss is missing from either of the last two epochs (or was 0) gets w_k = 1.
    """
    tasks = list(tasks)
    if len(history) < 2 or not tasks:
        return {task: 1.0 for task in tasks}
    previous, before = history[-1], history[-2]
    ratios = {}
    for task in tasks:
        last, earlier = previous.get(task), before.get(task)
        ratios[task] = last / earlier if last is not None and earlier is not None and earlier > 0 else 1.0
    # Softmax of w / T, shifted by the max for stability; times K.
    top = max(ratios.values()) / temperature
    exps = {task: math.exp(r / temperature - top) for task, r in ratios.items()}
    total = sum(exps.values())
    return {task: len(tasks) * e / total for task, e in exps.items()}


class DynamicWeightAverage(Weighting):
    """Dynamic weight average: lambda_k from the ratio of the last two epoch losses, times alpha, beta (000)."""

    name = "dwa"

    class Config(BaseModel):
        alpha: float = Field(1.0, ge=0, description="base weight of the scene loss, multiplied by DWA's lambda")
        beta: float = Field(1.0, ge=0, description="base weight of the event loss, multiplied by DWA's lambda")
        temperature: float = Field(2.0, gt=0, description="softmax temperature T (Liu et al. use 2)")

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        super().__init__(config)
        #: Epoch means of the unweighted task losses, one dict per finished epoch.
        self.history: list[dict[str, float]] = []
        self._epoch_losses = TaskMeans()
        self._tasks: list[str] = []  # every task seen so far, in first-seen order: the K of the formula
        self._lambdas: dict[str, float] = {}  # lambda for the epoch in progress
        self._last_epoch_lambdas: dict[str, float] = {}
        self._steps_in_epoch = 0

    def _note_tasks(self, tasks: Sequence[str]) -> None:
        for task in tasks:
            if task not in self._tasks:
                self._tasks.append(task)
                self._lambdas = dwa_weights(self.history, self._tasks, self.config.temperature)

    def lambdas(self, present: Sequence[str] | None = None) -> dict[str, float]:
        """DWA's lambda for the epoch in progress, renormalised over ``present`` tasks when given."""
        if present is None:
            return dict(self._lambdas)
        return renormalise(self._lambdas, list(present))

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        self._note_tasks(list(losses))
        if self.training:
            self._epoch_losses.add_all(losses)
            self._steps_in_epoch += 1
        # Lambdas sum to K; a batch lacking a task renormalises the rest to sum to the tasks present.
        lam = self.lambdas(list(losses))
        base = base_weights(self.config)
        return weighted_sum(losses, {task: base.get(task, 1.0) * lam[task] for task in losses})

    def on_epoch_end(self, context: EpochContext) -> None:
        # Prefer the engine's epoch means (what the run history records) and fall back on our own per-task means;
        # a task with no batch this epoch simply has no entry.
        means = self._epoch_losses.means()
        for task, value in context.train_losses.items():
            if value is not None and math.isfinite(float(value)):
                means[task] = float(value)
        self._note_tasks(list(means))
        self.history.append(means)
        self._last_epoch_lambdas = dict(self._lambdas)
        self._lambdas = dwa_weights(self.history, self._tasks, self.config.temperature)
        self._epoch_losses.reset()
        self._steps_in_epoch = 0

    def effective_weights(self) -> dict[str, float]:
        """alpha * lambda_scene and beta * lambda_event of the epoch in progress (of the last one between epochs)."""
        lam = self._lambdas if self._steps_in_epoch or not self._last_epoch_lambdas else self._last_epoch_lambdas
        base = base_weights(self.config)
        return {task: base.get(task, 1.0) * value for task, value in lam.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": [dict(h) for h in self.history],
            "epoch_losses": self._epoch_losses.state_dict(),
            "tasks": list(self._tasks),
            "last_epoch_lambdas": dict(self._last_epoch_lambdas),
            "steps_in_epoch": self._steps_in_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.history = [{k: float(v) for k, v in h.items()} for h in state.get("history", [])]
        self._epoch_losses.load_state_dict(state.get("epoch_losses", {}))
        self._tasks = list(state.get("tasks", []))
        self._last_epoch_lambdas = {k: float(v) for k, v in state.get("last_epoch_lambdas", {}).items()}
        self._steps_in_epoch = int(state.get("steps_in_epoch", 0))
        self._lambdas = dwa_weights(self.history, self._tasks, self.config.temperature)
