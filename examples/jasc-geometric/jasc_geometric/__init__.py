"""Geometric loss strategy (Chennupati et al., CVPR-W 2019): the geometric mean of the task losses.

    L = (prod_k L_k) ** (1 / K)

Taking the geometric mean makes the combined gradient of each task scale with L / L_k, so a task whose loss is
small relative to the others is not drowned out. Written only against jasc's public contract (DESIGN.md).
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

    def combine(self, losses, context):
        # exp(mean(log L_k)) is the geometric mean, computed in log space for stability; a batch that lacks a
        # task simply has fewer terms (K shrinks), so nothing is zero-filled.
        logs = torch.stack([torch.log(loss + self.config.eps) for loss in losses.values()])
        return torch.exp(logs.mean())


@hookimpl
def jasc_register_components(register):
    register(GeometricLoss)
