"""Geometric loss strategy (Chennupati et al., CVPR-W 2019): the geometric mean of the task losses.

    L = (prod_k L_k) ** (1 / K)

Taking the geometric mean makes the combined gradient of each task scale with L / L_k, so a task whose loss is
small relative to the others is not drowned out. Its implicit weight of task k, dL/dL_k = L / (K L_k), is what
``effective_weights`` reports. Written only against jasc's public contract (``jasc_core``'s names and the
docstrings in ``jasc_core/contract/``, docs/plugins.md).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field

from jasc_core import Weighting, hookimpl


class GeometricLoss(Weighting):
    """Geometric mean of the task losses (GLS); scale-free, no weights to tune."""

    name = "geometric"

    class Config(BaseModel):
        eps: float = Field(1e-8, gt=0, description="added to each loss before the log, so a zero loss stays finite")

    def __init__(self, config=None):
        super().__init__(config)
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._weights: dict[str, float] = {}

    def combine(self, losses, context):
        # exp(mean(log L_k)) is the geometric mean, computed in log space for stability; a batch that lacks a
        # task simply has fewer terms (K shrinks), so nothing is zero-filled.
        logs = torch.stack([torch.log(loss + self.config.eps) for loss in losses.values()])
        total = torch.exp(logs.mean())
        if self.training:  # the implicit weight dL/dL_k = L / (K (L_k + eps)) of each task, averaged per epoch
            for task, loss in losses.items():
                weight = float(total.detach() / (len(losses) * (loss.detach() + self.config.eps)))
                self._sums[task] = self._sums.get(task, 0.0) + weight
                self._counts[task] = self._counts.get(task, 0) + 1
        return total

    def on_epoch_end(self, context):
        self._weights = {task: self._sums[task] / self._counts[task] for task in self._sums}
        self._sums, self._counts = {}, {}

    def effective_weights(self):
        """The mean implicit weight of each task over the epoch just trained (history.json, plots/weights.png)."""
        return dict(self._weights)


@hookimpl
def jasc_register_components(register):
    register(GeometricLoss)
