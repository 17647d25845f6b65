"""Bookkeeping every weighting scheme shares: base weights, weighted sums, renormalisation, per-task epoch means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from torch import Tensor

from jasc_core import StepContext


def base_weights(config: BaseModel) -> dict[str, float]:
    """The per-task base weights alpha (scene) and beta (event) of 001 Eq. 3."""
    return {"scene": float(config.alpha), "event": float(config.beta)}


def weighted_sum(losses: Mapping[str, Tensor], weights: Mapping[str, float | Tensor]) -> Tensor:
    """Sum of ``weights[task] * losses[task]`` over the tasks present in the batch.

    A task the batch lacks contributes nothing (never a zero-filled loss); a task without a weight counts 1.
    """
    if not losses:
        raise ValueError("no task losses to combine: the batch has no labels for any trained task")
    total: Tensor | None = None
    for task, loss in losses.items():
        term = weights.get(task, 1.0) * loss
        total = term if total is None else total + term
    assert total is not None
    return total


def renormalise(factors: Mapping[str, float], present: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Rescale the factors of the ``present`` tasks so that they sum to the number of present tasks.

    Normalised schemes (DWA, RLW) make their K factors sum to K; when a batch lacks a task its factor is dropped and
    the remaining ones are rescaled the same way, so a batch with one task gives that task factor 1.
    """
    kept = {task: float(factors.get(task, 1.0)) for task in present}
    total = sum(kept.values())
    if total <= 0:
        return {task: 1.0 for task in present}
    return {task: value * len(kept) / total for task, value in kept.items()}


class TaskMeans:
    """Running per-task means with per-task counts (a task may be missing from some batches or whole epochs)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, task: str, value: float, count: int = 1) -> None:
        self.sums[task] = self.sums.get(task, 0.0) + float(value) * count
        self.counts[task] = self.counts.get(task, 0) + count

    def add_all(self, values: Mapping[str, float | Tensor]) -> None:
        for task, value in values.items():
            self.add(task, float(value.detach()) if isinstance(value, Tensor) else float(value))

    def means(self) -> dict[str, float]:
        return {task: self.sums[task] / self.counts[task] for task in self.sums if self.counts[task] > 0}

    def empty(self) -> bool:
        return not any(self.counts.values())

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sums = {k: float(v) for k, v in state.get("sums", {}).items()}
        self.counts = {k: int(v) for k, v in state.get("counts", {}).items()}


class EpochWeights:
    """The mean per-task weight applied over the training steps of an epoch, for ``effective_weights``.

    ``current()`` is the mean over the epoch in progress once it has a step, and the finished epoch's mean before
    that, so the engine gets the weights the epoch just trained with whether it asks before or after
    ``on_epoch_end``.
    """

    def __init__(self) -> None:
        self._running = TaskMeans()
        self._finished: dict[str, float] = {}

    def record(self, weights: Mapping[str, float | Tensor], training: bool) -> None:
        """Add one step's weights; validation passes (``training`` False, the scheme's flag) are not counted."""
        if training:
            self._running.add_all(weights)

    def end_epoch(self) -> None:
        if not self._running.empty():
            self._finished = self._running.means()
        self._running.reset()

    def current(self) -> dict[str, float]:
        return self._running.means() if not self._running.empty() else dict(self._finished)

    def state_dict(self) -> dict[str, Any]:
        return {"running": self._running.state_dict(), "finished": dict(self._finished)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._running.load_state_dict(state.get("running", {}))
        self._finished = {k: float(v) for k, v in state.get("finished", {}).items()}


def step_seed(config_seed: int | None, context: StepContext) -> int:
    """A seed for the random draws of one step: the scheme's own seed, else the run's (``context.seed``), combined
    with the step (``context.step``, counted over the whole run) so that reruns and resumed runs draw the same."""
    seed = int(config_seed) if config_seed is not None else int(context.seed)
    return (seed * 1_000_003 + int(context.step)) % (2**63)
