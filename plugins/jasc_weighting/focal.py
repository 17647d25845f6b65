"""Multi-focal loss (001 Eq. 4-6): focal scene and event losses whose modulation adapts the task balance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import EpochContext, StepContext, Weighting, broadcast_class_mask, class_masks_of
from jasc_weighting.task_weights import EpochWeights, base_weights, weighted_sum

Reduction = Literal["sum", "mean"]


def log_one_minus_softmax(logits: Tensor) -> Tensor:
    """log(1 - softmax(logits)) per class, [B, N], without forming 1 - p.

    1 - p_n = sum_{j != n} exp(x_j) / sum_j exp(x_j), so log(1 - p_n) = logsumexp_{j != n} x_j - logsumexp_j x_j.
    This stays finite (and has finite gradients) where p_n rounds to 1 in float32, where log1p(-p) would be -inf.
    """
    n = logits.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=logits.device)
    # [B, N, N]: row n holds the logits with x_n masked out.
    others = logits.unsqueeze(-2).expand(*logits.shape[:-1], n, n).masked_fill(eye, float("-inf"))
    return torch.logsumexp(others, dim=-1) - torch.logsumexp(logits, dim=-1, keepdim=True)


def _power_of(log_base: Tensor, exponent: float) -> Tensor:
    """base ** exponent from log(base); exactly 1 for exponent 0 (avoids 0 * -inf when the base is 0)."""
    if exponent == 0:
        return torch.ones_like(log_base)
    return torch.exp(exponent * log_base)


def scene_focal_terms(logits: Tensor, targets: Tensor, eta: float) -> tuple[Tensor, Tensor]:
    """Per-element terms of 001 Eq. 5, -(1 - y_n)^eta z_n log y_n, [B, N], and the per-clip modulation, [B].

    ``logits`` [B, N]; ``targets`` class indices [B] (or one-hot / class probabilities [B, N]). y = softmax(logits).
    The modulation of a clip is (1 - y_c)^eta of its target class c (target-weighted for soft targets).
    """
    logits = logits.float()
    if targets.dim() == logits.dim() - 1:
        z = F.one_hot(targets.long(), logits.shape[-1]).to(logits.dtype)
    else:
        z = targets.to(logits.dtype)
    log_y = F.log_softmax(logits, dim=-1)
    modulation = _power_of(log_one_minus_softmax(logits), eta)  # (1 - y_n)^eta
    terms = -modulation * z * log_y  # Eq. 5, before the sum over n
    return terms, (modulation * z).sum(-1)


def event_focal_terms(logits: Tensor, targets: Tensor, gamma: float, zeta: float) -> tuple[Tensor, Tensor]:
    """Per-element terms of 001 Eq. 6 and their modulation, both [B, T, M].

    -{(1 - y)^gamma z log y + y^zeta (1 - z) log(1 - y)} with y = sigmoid(logits); log y = logsigmoid(x) and
    log(1 - y) = logsigmoid(-x) keep it finite for any logit. The modulation of an element is (1 - y)^gamma where
    z = 1 and y^zeta where z = 0.
    """
    logits = logits.float()
    z = targets.to(logits.dtype)
    log_y = F.logsigmoid(logits)
    log_1my = F.logsigmoid(-logits)
    positive = _power_of(log_1my, gamma)  # (1 - y)^gamma
    negative = _power_of(log_y, zeta)  # y^zeta
    terms = -(positive * z * log_y + negative * (1 - z) * log_1my)  # Eq. 6, before the sum over t, m
    return terms, positive * z + negative * (1 - z)


def reduce_terms(terms: Tensor, reduction: Reduction, weight: Tensor | None = None) -> Tensor:
    """``sum``: sum over everything but the clip axis, mean over clips (Eq. 5-6 as printed); ``mean``: mean of all.

    ``weight`` (broadcastable to ``terms``, 0 or 1) leaves out the entries of classes a clip's dataset does not
    annotate: they add nothing to a sum, and ``mean`` averages over the annotated entries only.
    """
    if weight is not None:
        weight = weight.expand_as(terms)
        terms = terms * weight
        if reduction == "mean":
            return terms.sum() / weight.sum().clamp(min=1.0)
    if reduction == "mean":
        return terms.mean()
    return terms.reshape(terms.shape[0], -1).sum(-1).mean()


class MultiFocal(Weighting):
    """Multi-focal loss: focal scene (Eq. 5) and event (Eq. 6) losses mixed by alpha, beta (001 Eq. 3)."""

    name = "mfl"

    class Config(BaseModel):
        alpha: float = Field(0.001, ge=0, description="weight of the scene focal loss (001 Eq. 3)")
        beta: float = Field(1.0, ge=0, description="weight of the event focal loss (001 Eq. 3)")
        gamma: float = Field(1.0, ge=0, description="focusing parameter on event positives (001 Eq. 6)")
        zeta: float = Field(0.0625, ge=0, description="focusing parameter on event negatives (001 Eq. 6)")
        eta: float = Field(0.5, ge=0, description="focusing parameter of the scene loss (001 Eq. 5)")
        reduction: Reduction = Field(
            "sum",
            description="sum: Eq. 5 summed over classes, Eq. 6 over frames and classes, mean over clips (as printed); "
            "mean: mean over all elements (the authors' code)",
        )

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        super().__init__(config)
        # Mean focal modulation per task over the training steps of an epoch.
        self._modulation = EpochWeights()

    def task_losses(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        cfg = self.config
        losses: dict[str, Tensor] = {}
        modulation: dict[str, Tensor] = {}
        class_masks = class_masks_of(targets)
        for task, target in targets.items():
            if task not in outputs:
                continue
            if task == "event" and outputs[task].shape != target.shape:
                raise ValueError(
                    f"mfl: event logits {tuple(outputs[task].shape)} and frame targets {tuple(target.shape)} differ; "
                    "Eq. 6 needs frame-level targets [B, T, M] at the logits' frame rate"
                )
            weight = None
            if task == "scene":
                terms, factor = scene_focal_terms(outputs[task], target, cfg.eta)
            elif task == "event":
                terms, factor = event_focal_terms(outputs[task], target, cfg.gamma, cfg.zeta)
                if task in class_masks:  # classes a clip's dataset does not annotate: neither positive nor negative
                    weight = broadcast_class_mask(class_masks[task], terms)
            else:
                continue
            losses[task] = reduce_terms(terms, cfg.reduction, weight)
            modulation[task] = (factor.detach().mean() if weight is None
                                else reduce_terms(factor.detach(), "mean", weight))
        self._modulation.record(modulation, self.training)
        return losses

    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        # 001 Eq. 3 with the focal losses of Eq. 5-6. The dynamic part of MFL lives inside the task losses, so the
        # outer weights are the constant alpha, beta: a batch lacking a task just has one term less.
        return weighted_sum(losses, base_weights(self.config))

    def modulation(self) -> dict[str, float]:
        """Mean focal modulation per task over the epoch in progress (or the last finished one before any step)."""
        return self._modulation.current()

    def effective_weights(self) -> dict[str, float]:
        """alpha (beta) times the mean modulation factor: what the scene (event) cross-entropy is multiplied by."""
        weights = base_weights(self.config)
        return {task: weights[task] * factor for task, factor in self.modulation().items()}

    def on_epoch_end(self, context: EpochContext) -> None:
        self._modulation.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        return {"modulation": self._modulation.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._modulation.load_state_dict(state.get("modulation", {}))
