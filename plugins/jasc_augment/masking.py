"""SpecAugment-style masking (Park et al. 2019): zero a random band of time frames and one of feature bins per clip.

003 masks 15 % of the spectrogram along each axis: ``time: 0.15, freq: 0.15`` masks, per clip, one band of up to 15 %
of the frames and one of up to 15 % of the mel bins (widths drawn uniformly from 0 to that maximum).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import Augmentation, Batch


def band_mask(batch: int, length: int, max_fraction: float, generator: torch.Generator) -> Tensor:
    """``[batch, length]`` bool, True inside one random band per row of width ``0 .. max_fraction * length``."""
    widths = (torch.rand(batch, generator=generator) * max_fraction * length).long()
    starts = (torch.rand(batch, generator=generator) * (length - widths + 1).float()).long()
    positions = torch.arange(length)
    return (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])


class SpecMask(Augmentation):
    """SpecAugment-style time and frequency masking of the features (003: 15 % along each axis)."""

    name = "spec_mask"

    class Config(BaseModel):
        time: float = Field(0.15, ge=0, le=1, description="largest masked share of the frames per clip")
        freq: float = Field(0.15, ge=0, le=1, description="largest masked share of the feature bins per clip")
        value: float = Field(0.0, description="what masked bins are set to (0: the mean of normalised features)")

    def forward(self, features: Tensor, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Batch]:
        b, t, f = features.shape
        masked = band_mask(b, t, self.config.time, generator)[:, :, None] | band_mask(b, f, self.config.freq,
                                                                                     generator)[:, None, :]
        return features.masked_fill(masked.to(features.device), self.config.value), batch
