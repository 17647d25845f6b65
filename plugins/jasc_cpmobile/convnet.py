"""The DESED baseline's CNN (DCASE 2023 Task 4, ``DCASE-REPO/DESED_task`` desed_task/nnet/CNN.py) as an encoder.

Each block: 3x3 conv (with bias), batch norm, gate (GLU by default), dropout, average pool ``[time, frequency]``.
The default config is the 2023 baseline's ``net`` block: channels 16, 32, 64, 128, 128, 128, 128; pools (2, 2),
(2, 2), then (1, 2) five times, so 128 mel bins pool to 1 and time to a quarter; dropout 0.5. With the ``rnn`` event
head at ``hidden_size: 128, num_layers: 2, clip_output: attention`` it is the baseline CRNN (1,112,420 parameters on
10 classes). With ``activation: relu`` and narrower channels it is the plain CNN of 003's MT model.

DESED's GLU is not ``torch.nn.GLU``: it multiplies a per-position linear map of the conv output (a 1x1 "linear" over
channels, C x C + C parameters) by the sigmoid of the conv output itself. Its batch norm uses ``eps=0.001,
momentum=0.99``; in PyTorch's convention that momentum makes the running statistics follow each new batch almost
entirely (a Keras-style 0.99 taken over literally). Both are kept so that the counts and behaviour match.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, model_validator
from torch import Tensor, nn

from jasc_core import ConfigError, Encoder


class GLU(nn.Module):
    """DESED's gated linear unit: ``linear(x) * sigmoid(x)``, the linear map over channels at every position."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        gated = self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return gated * x.sigmoid()


class ContextGating(nn.Module):
    """DESED's context gating: ``x * sigmoid(linear(x))``, the linear map over channels at every position."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x * gate.sigmoid()


def make_gate(kind: str, channels: int) -> nn.Module:
    if kind == "glu":
        return GLU(channels)
    if kind == "cg":
        return ContextGating(channels)
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.2)  # DESED's slope
    return nn.ReLU()


class DesedCNN(Encoder):
    """DESED baseline CNN (DCASE 2023 Task 4): 3x3 conv, BN, GLU, dropout, average pool; 7 blocks by default."""

    name = "desed_cnn"

    class Config(BaseModel):
        channels: list[PositiveInt] = Field(
            [16, 32, 64, 128, 128, 128, 128], min_length=1,
            description="output channels of each conv block (DESED 2023: 16, 32, 64, 128, 128, 128, 128)",
        )
        pools: list[tuple[PositiveInt, PositiveInt]] = Field(
            [(2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2)],
            description="[time, frequency] average-pool after each block (DESED 2023: 2x2, 2x2, then 1x2)",
        )
        kernel_size: PositiveInt = Field(3, description="square conv kernel, odd, 'same' padding (DESED: 3)")
        activation: Literal["glu", "cg", "relu", "leaky_relu"] = Field(
            "glu", description="gate after batch norm: DESED's GLU, context gating, ReLU or Leaky ReLU 0.2"
        )
        dropout: float = Field(0.5, ge=0, lt=1, description="dropout after each block's gate (DESED 2023: 0.5)")
        bn_eps: PositiveFloat = Field(0.001, description="batch-norm epsilon (DESED: 0.001)")
        bn_momentum: float = Field(0.99, gt=0, le=1, description="batch-norm momentum, PyTorch convention "
                                                                 "(DESED: 0.99)")

        @model_validator(mode="after")
        def _one_pool_per_block(self) -> DesedCNN.Config:
            if len(self.channels) != len(self.pools):
                raise ValueError(f"channels and pools need one entry per conv block; got {len(self.channels)} and "
                                 f"{len(self.pools)}")
            if self.kernel_size % 2 == 0:
                raise ValueError(f"kernel_size must be odd so that 'same' padding keeps the map size, got "
                                 f"{self.kernel_size}")
            return self

    def __init__(self, config=None, *, n_features: int = 128) -> None:
        super().__init__(config, n_features=n_features)
        cfg = self.config
        layers: list[nn.Module] = []
        channels, freq = 1, n_features
        for out_channels, pool in zip(cfg.channels, cfg.pools, strict=True):
            layers += [
                nn.Conv2d(channels, out_channels, cfg.kernel_size, padding=cfg.kernel_size // 2),
                nn.BatchNorm2d(out_channels, eps=cfg.bn_eps, momentum=cfg.bn_momentum),
                make_gate(cfg.activation, out_channels),
            ]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            layers.append(nn.AvgPool2d(tuple(pool)))
            channels, freq = out_channels, freq // pool[1]
        if freq < 1:
            raise ConfigError(f"encoder desed_cnn: frequency pools {[p[1] for p in cfg.pools]} (product "
                              f"{math.prod(p[1] for p in cfg.pools)}) pool {n_features} features down to nothing")
        self.cnn = nn.Sequential(*layers)
        self.out_channels = channels
        self.out_features = freq
        self.time_stride = math.prod(pool[0] for pool in cfg.pools)

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() != 3 or features.shape[-1] != self.n_features:
            raise ValueError(f"desed_cnn was built for {self.n_features} features and takes [batch, frames, "
                             f"{self.n_features}], got {list(features.shape)}")
        return self.cnn(features.unsqueeze(1))  # [B, C, T / time_stride, F']
