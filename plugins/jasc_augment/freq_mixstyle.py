"""Freq-MixStyle (Schmid et al., CP-Mobile, DCASE 2022/2023 Task 1): mix the per-frequency-bin statistics of pairs of
clips, so a model cannot tell recording devices apart by their frequency response.

For a batch chosen with ``probability``: per clip and frequency bin, mean mu and standard deviation sigma over time;
x' = ((x - mu) / sigma) * sigma_mix + mu_mix with mu_mix = lam mu + (1 - lam) mu[perm] (sigma likewise) and
lam ~ Beta(alpha, alpha) per clip. Targets are unchanged (the content of a clip stays its own).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import Augmentation, Batch


class FreqMixStyle(Augmentation):
    """Mixes per-frequency feature statistics between clips (CP-Mobile's Freq-MixStyle; its defaults 0.4, 0.3)."""

    name = "freq_mixstyle"

    class Config(BaseModel):
        alpha: float = Field(0.3, gt=0, description="Beta(alpha, alpha) distribution of the mixing weight")
        probability: float = Field(0.4, ge=0, le=1, description="share of batches that are mixed")
        eps: float = Field(1e-6, gt=0, description="added to the variance before the square root")

    def forward(self, features: Tensor, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Batch]:
        b = features.shape[0]
        if float(torch.rand((), generator=generator)) >= self.config.probability or b < 2:
            return features, batch
        mu = features.mean(dim=1, keepdim=True)  # [B, 1, F]: statistics over time, per frequency bin
        sigma = (features.var(dim=1, keepdim=True) + self.config.eps).sqrt()
        normalised = (features - mu.detach()) / sigma.detach()
        a = torch.full((b, 2), self.config.alpha)
        g = torch._standard_gamma(a, generator=generator)
        lam = (g[:, :1] / g.sum(dim=1, keepdim=True)).to(features.device)[:, :, None]  # [B, 1, 1]
        perm = torch.randperm(b, generator=generator).to(features.device)
        mu_mix = lam * mu + (1 - lam) * mu[perm]
        sigma_mix = lam * sigma + (1 - lam) * sigma[perm]
        return normalised * sigma_mix + mu_mix, batch
