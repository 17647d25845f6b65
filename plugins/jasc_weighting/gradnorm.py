"""GradNorm (Chen et al., ICML 2018): learn task weights that balance gradient norms on the last shared layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import TASKS, EpochContext, StepContext, Weighting
from jasc_weighting.constraints import joint_step_problems
from jasc_weighting.gradients import flatten, reference_shapes, unflatten
from jasc_weighting.task_weights import EpochWeights, base_weights, weighted_sum


def last_layer_indices(like: Sequence[Tensor]) -> list[int]:
    """The shared parameters GradNorm measures by default: the last one with >= 2 dims (the weight of the last
    shared conv/linear layer, skipping a trailing batch-norm's 1-d scale and shift); the last one if none is."""
    for i in range(len(like) - 1, -1, -1):
        if like[i].dim() >= 2:
            return [i]
    return [len(like) - 1] if like else []


class GradNorm(Weighting):
    """GradNorm: task weights w_k trained so that |grad_W w_k L_k| follows each task's relative training rate."""

    name = "gradnorm"
    requires_task_gradients: ClassVar[bool] = True

    @classmethod
    def check_recipe(cls, block: BaseModel, recipe: BaseModel) -> list[str]:
        """Rejects a single-head model and a schedule that trains one task per step (see ``constraints``)."""
        return joint_step_problems(cls.name, recipe)

    class Config(BaseModel):
        alpha: float = Field(1.0, gt=0, description="initial weight of the scene loss; weights keep their initial sum")
        beta: float = Field(1.0, gt=0, description="initial weight of the event loss; weights keep their initial sum")
        asymmetry: float = Field(1.5, ge=0, description="GradNorm's alpha: strength of the restoring force")
        lr: float = Field(0.01, gt=0, description="learning rate of the internal Adam step on the weights")
        layer: Literal["last", "all"] = Field(
            "last", description="shared parameters whose gradient norms are balanced: the last shared layer, or all"
        )

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        super().__init__(config)
        initial = base_weights(self.config)
        self._tasks = list(TASKS)
        self._initial_weights = torch.tensor([initial.get(t, 1.0) for t in self._tasks], dtype=torch.float64)
        # The weights are trained by GradNorm's own loss only (never by the task losses), so they live here with
        # their own optimiser rather than in the engine's: parameters() stays empty.
        self.raw_weights = torch.nn.Parameter(self._initial_weights.clone())
        self._optimizer = torch.optim.Adam([self.raw_weights], lr=self.config.lr)
        self.initial_losses: dict[str, float] = {}
        self._epoch_weights = EpochWeights()

    def weights(self, present: Sequence[str] | None = None) -> dict[str, float]:
        """w_k, renormalised over ``present`` tasks to the sum of their initial weights when given."""
        w = self.raw_weights.detach()
        values = {t: float(w[i]) for i, t in enumerate(self._tasks)}
        if present is None:
            return values
        present = [t for t in present if t in values]
        initial = sum(float(self._initial_weights[self._tasks.index(t)]) for t in present)
        scale = initial / sum(values[t] for t in present)
        return {t: values[t] * scale for t in present}

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        # The task-specific (head) parameters get w_k * grad L_k, like the shared ones below.
        return weighted_sum(losses, self.weights(list(losses)))

    def combine_gradients(
        self, grads: Mapping[str, list[Tensor]], losses: Mapping[str, Tensor], context: StepContext
    ) -> list[Tensor]:
        like = reference_shapes(grads, context)
        tasks = [t for t in grads if t in self._tasks]
        if not tasks:
            raise ValueError(f"gradnorm balances {', '.join(self._tasks)}; got gradients for {', '.join(grads)}")
        w = self.weights(tasks)
        self._epoch_weights.record(w, self.training)
        vectors = {t: flatten(grads[t], like) for t in tasks}
        combined = torch.stack([w[t] * vectors[t] for t in tasks]).sum(0)
        if len(tasks) >= 2 and self.training:
            self._update_weights(tasks, grads, losses, like)
        return unflatten(combined, like)

    def _update_weights(
        self, tasks: list[str], grads: Mapping[str, list[Tensor]], losses: Mapping[str, Tensor], like: list[Tensor]
    ) -> None:
        """One step on GradNorm's loss sum_k |G_k - mean(G) r_k^a| with respect to the weights (Chen et al. Eq. 2)."""
        indices = last_layer_indices(like) if self.config.layer == "last" else list(range(len(like)))
        picked = [like[i] for i in indices]
        norms = torch.tensor(
            [float(flatten([grads[t][i] for i in indices], picked).norm()) for t in tasks], dtype=torch.float64
        )
        current = {t: float(losses[t].detach()) for t in tasks}
        for t in tasks:
            self.initial_losses.setdefault(t, current[t])
        # Inverse training rate r_k = L~_k / mean L~, with L~_k = L_k(t) / L_k(0).
        ratios = torch.tensor([current[t] / max(self.initial_losses[t], 1e-12) for t in tasks], dtype=torch.float64)
        rates = ratios / ratios.mean().clamp_min(1e-12)
        index = torch.tensor([self._tasks.index(t) for t in tasks])
        scale = self._initial_weights[index].sum()
        with torch.enable_grad():
            w_all = self.raw_weights
            # The weights applied this step, as in combine(); the renormalising factor is a constant so the gradient is
            # GradNorm's plain d/dw (the renormalisation follows the step, as in Chen et al.).
            w = w_all[index] * (scale / w_all[index].sum()).detach()
            grad_norms = w * norms  # G_k = |grad_W w_k L_k| = w_k |grad_W L_k|
            target = (grad_norms.mean() * rates.pow(self.config.asymmetry)).detach()  # a constant (Chen et al.)
            loss = (grad_norms - target).abs().sum()
            self._optimizer.zero_grad()
            loss.backward()
        self._optimizer.step()
        with torch.no_grad():
            # Keep the weights positive and renormalise them to their initial sum (K for alpha = beta = 1).
            w_all = self.raw_weights.clamp_min(1e-6)
            w_all[index] = w_all[index] / w_all[index].sum() * scale
            self.raw_weights.copy_(w_all)

    def on_epoch_end(self, context: EpochContext) -> None:
        self._epoch_weights.end_epoch()

    def effective_weights(self) -> dict[str, float]:
        """GradNorm's w_k applied, averaged over the epoch's steps (the current w before any step)."""
        return self._epoch_weights.current() or self.weights()

    def state_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights(),
            "initial_losses": dict(self.initial_losses),
            "optimizer": self._optimizer.state_dict(),
            "epoch_weights": self._epoch_weights.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._epoch_weights.load_state_dict(state.get("epoch_weights", {}))
        weights = state.get("weights", {})
        with torch.no_grad():
            for i, task in enumerate(self._tasks):
                if task in weights:
                    self.raw_weights[i] = float(weights[task])
        self.initial_losses = {k: float(v) for k, v in state.get("initial_losses", {}).items()}
        if "optimizer" in state:
            self._optimizer.load_state_dict(state["optimizer"])
