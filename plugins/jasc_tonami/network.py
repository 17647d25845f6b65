"""The Tonami et al. MTL network of ASC and SED (001 Table II), as three components.

Read top to bottom like Table II::

    Shared network   log-mel [T x F] -> (3x3 conv 128, BN, Leaky ReLU, 1x8 freq max-pool)
                                     -> (3x3 conv 128, BN, Leaky ReLU, 1x2 freq max-pool) x 2      = `tonami_cnn`
    Scene layers     3x3 conv 256, BN, Leaky ReLU, 25x1 time max-pool
                     3x3 conv 256, BN, Leaky ReLU, global max-pool
                     FC 32, Leaky ReLU, FC N (softmax in the loss)                                   = `tonami_scene`
    Event layers     BiGRU 32 units, FC 32, Leaky ReLU, FC M (sigmoid in the loss)                   = `bigru`

Every head returns logits: the softmax / sigmoid of Table II live in the losses and post-processing.

Tensors are laid out ``[B, C, T, F]`` (time before frequency). The authors' code (``KeisukeImoto/mtl_sed_asc``)
lays them out ``[B, C, F, T]``; that changes no parameter count and no result, only the axis names. What their code
does differently from Table II is configurable here (see ``recipes/tonami_official_code.yaml``): ReLU instead of
Leaky ReLU, a 64-unit BiGRU, and a scene "global" pool over time only, which keeps the 2 frequency bins and feeds
256 x 2 = 512 values to the FC layer. Their convolutions keep a bias in front of batch norm, and both heads apply
dropout 0.15 after the hidden FC layer; those are the defaults here too because the paper does not say otherwise.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, PositiveInt, field_validator, model_validator
from torch import Tensor, nn

from jasc_core import ConfigError, Encoder, Head

# -- building blocks ---------------------------------------------------------------------------------------------


Activation = Literal["leaky_relu", "relu"]


def activation_field() -> Any:
    return Field(
        "leaky_relu", description="nonlinearity after each conv / hidden FC layer (Table II: leaky_relu; code: relu)"
    )


def negative_slope_field() -> Any:
    return Field(0.01, ge=0, description="slope of leaky_relu for negative inputs (paper: unstated; PyTorch default)")


def make_activation(config: BaseModel) -> nn.Module:
    """The configured nonlinearity (``config.activation``, ``config.negative_slope``) as a module, so that it shows
    in ``print(model)``."""
    if config.activation == "relu":
        return nn.ReLU()
    return nn.LeakyReLU(config.negative_slope)


class ConvBlock(nn.Sequential):
    """One Table II row: square conv ('same' padding) -> batch norm -> activation -> max-pool (time, frequency)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        pool: tuple[int, int],
        batch_norm: bool,
        conv_bias: bool,
        activation: nn.Module,
        dropout: float = 0.0,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=conv_bias)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(activation)
        if pool != (1, 1):
            layers.append(nn.MaxPool2d(pool))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


def check_class_count(head: Head) -> None:
    """A head block that states ``n_classes`` must agree with the count the model builder passes (the dataset's)."""
    stated = head.config.n_classes
    if stated is not None and stated != head.n_classes:
        raise ConfigError(
            f"model.heads.{head.task}.n_classes is {stated} but the data has {head.n_classes} {head.task} classes"
        )


def check_odd(value: int) -> int:
    # 'same' padding k // 2 keeps the map size only for odd kernels; an even one would shift the time axis.
    if value % 2 == 0:
        raise ValueError(f"kernel_size must be odd so that 'same' padding keeps the map size, got {value}")
    return value


# -- shared network ----------------------------------------------------------------------------------------------


class TonamiCNN(Encoder):
    """Tonami et al. shared CNN (001 Table II): 3x3 conv blocks of 128 channels, BN, Leaky ReLU, freq pools 8, 2, 2."""

    name = "tonami_cnn"

    class Config(BaseModel):
        channels: list[PositiveInt] = Field(
            [128, 128, 128], min_length=1, description="output channels of each conv block (Table II: 128, 128, 128)"
        )
        kernel_size: PositiveInt = Field(3, description="square conv kernel, odd, 'same' padding (Table II: 3)")
        freq_pools: list[PositiveInt] = Field(
            [8, 2, 2], description="max-pool factor along frequency after each block (Table II: 8, 2, 2)"
        )
        time_pools: list[PositiveInt] = Field(
            [1, 1, 1], description="max-pool factor along time after each block (Table II: 1, 1, 1 = no time pooling)"
        )
        batch_norm: bool = Field(True, description="batch norm after each conv (Table II: yes)")
        conv_bias: bool = Field(True, description="conv bias in front of batch norm (authors' code: yes)")
        activation: Activation = activation_field()
        negative_slope: float = negative_slope_field()
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each block (authors' code: none)")

        _odd = field_validator("kernel_size")(check_odd)

        @model_validator(mode="after")
        def _one_pool_per_block(self) -> TonamiCNN.Config:
            if not len(self.channels) == len(self.freq_pools) == len(self.time_pools):
                raise ValueError(
                    f"channels, freq_pools and time_pools need one entry per conv block; got "
                    f"{len(self.channels)}, {len(self.freq_pools)} and {len(self.time_pools)}"
                )
            return self

    def __init__(self, config=None, *, n_features: int = 64) -> None:
        super().__init__(config, n_features=n_features)
        cfg = self.config
        blocks, in_channels, freq = [], 1, n_features
        for out_channels, time_pool, freq_pool in zip(cfg.channels, cfg.time_pools, cfg.freq_pools, strict=True):
            blocks.append(
                ConvBlock(
                    in_channels, out_channels, kernel_size=cfg.kernel_size, pool=(time_pool, freq_pool),
                    batch_norm=cfg.batch_norm, conv_bias=cfg.conv_bias, activation=make_activation(cfg),
                    dropout=cfg.dropout,
                )
            )
            in_channels, freq = out_channels, freq // freq_pool
        if freq < 1:
            raise ConfigError(
                f"encoder tonami_cnn: freq_pools {cfg.freq_pools} (product {math.prod(cfg.freq_pools)}) pool "
                f"{n_features} features down to nothing; use fewer or smaller pools or more features"
            )
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = in_channels
        self.out_features = freq
        self.time_stride = math.prod(cfg.time_pools)

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() != 3 or features.shape[-1] != self.n_features:
            raise ValueError(
                f"tonami_cnn was built for {self.n_features} features and takes [batch, frames, {self.n_features}], "
                f"got {list(features.shape)}"
            )
        # [B, T, F] -> one input channel [B, 1, T, F] -> [B, C, T / time_stride, F']
        return self.blocks(features.unsqueeze(1))


# -- scene layers ------------------------------------------------------------------------------------------------


class TonamiScene(Head):
    """Tonami et al. scene layers (001 Table II): two 3x3 conv of 256, 25x1 time pool, global max-pool, FC 32, FC N."""

    name = "tonami_scene"
    tasks = ("scene",)
    conformance_kwargs = {"task": "scene", "n_classes": 3, "in_channels": 8, "in_features": 4, "time_stride": 1}

    class Config(BaseModel):
        channels: list[PositiveInt] = Field(
            [256, 256], min_length=1, description="output channels of each conv block (Table II: 256, 256)"
        )
        kernel_size: PositiveInt = Field(3, description="square conv kernel, odd, 'same' padding (Table II: 3)")
        time_pools: list[PositiveInt] = Field(
            [25, 1],
            description="max-pool factor along time after each block, clipped to the map's length (Table II: 25, 1)",
        )
        global_pool: Literal["time_frequency", "time"] = Field(
            "time_frequency",
            description="final max-pool: over time and frequency (Table II) or over time only, flattening the "
            "frequency bins into the FC input (authors' code)",
        )
        fc_units: PositiveInt = Field(32, description="hidden FC layer size (Table II: 32)")
        batch_norm: bool = Field(True, description="batch norm after each conv (Table II: yes)")
        conv_bias: bool = Field(True, description="conv bias in front of batch norm (authors' code: yes)")
        activation: Activation = activation_field()
        negative_slope: float = negative_slope_field()
        dropout: float = Field(0.15, ge=0, lt=1, description="dropout after the hidden FC layer (authors' code: 0.15)")
        n_classes: PositiveInt | None = Field(
            None, description="scene classes; default: the dataset's count (a different count is an error)"
        )

        _odd = field_validator("kernel_size")(check_odd)

        @model_validator(mode="after")
        def _one_pool_per_block(self) -> TonamiScene.Config:
            if len(self.channels) != len(self.time_pools):
                raise ValueError(
                    f"channels and time_pools need one entry per conv block; got {len(self.channels)} and "
                    f"{len(self.time_pools)}"
                )
            return self

    def __init__(self, config=None, *, task: str = "scene", n_classes: int, in_channels: int, in_features: int,
                 time_stride: int = 1) -> None:
        super().__init__(config, task=task, n_classes=n_classes, in_channels=in_channels, in_features=in_features,
                         time_stride=time_stride)
        check_class_count(self)
        cfg = self.config
        self.time_pools = list(cfg.time_pools)
        self.blocks = nn.ModuleList()
        channels = in_channels
        for out_channels in cfg.channels:
            # Pooling is applied in forward: its time kernel is clipped to the map's length (short clips).
            self.blocks.append(
                ConvBlock(channels, out_channels, kernel_size=cfg.kernel_size, pool=(1, 1),
                          batch_norm=cfg.batch_norm, conv_bias=cfg.conv_bias, activation=make_activation(cfg))
            )
            channels = out_channels
        fc_inputs = channels if cfg.global_pool == "time_frequency" else channels * in_features
        self.classifier = nn.Sequential(
            nn.Linear(fc_inputs, cfg.fc_units),
            make_activation(cfg),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.fc_units, n_classes),
        )

    def forward(self, feature_map: Tensor) -> Tensor:
        x = feature_map
        for block, time_pool in zip(self.blocks, self.time_pools, strict=True):
            x = block(x)
            pool = min(time_pool, x.shape[2])
            if pool > 1:
                x = nn.functional.max_pool2d(x, (pool, 1))
        # max(...).values, not torch.amax: inductor's backward of amax after batch norm under bf16 autocast gives
        # non-finite gradients (torch 2.13, train.compile + precision bf16); eager gives the same values either way.
        if self.config.global_pool == "time_frequency":
            x = x.flatten(2).max(dim=2).values  # [B, C]
        else:
            x = x.max(dim=2).values.flatten(1)  # [B, C * F'], channel-major like the authors' reshape
        return self.classifier(x)  # logits [B, N]


# -- event layers ------------------------------------------------------------------------------------------------


class BiGRUHead(Head):
    """Tonami et al. event layers (001 Table II): BiGRU 32 units, FC 32 + Leaky ReLU, FC M, frame logits."""

    name = "bigru"
    tasks = ("event",)

    class Config(BaseModel):
        hidden_size: PositiveInt = Field(32, description="GRU units per direction (Table II: 32; authors' code: 64)")
        num_layers: PositiveInt = Field(1, description="stacked GRU layers (Table II: 1)")
        bidirectional: bool = Field(True, description="bidirectional GRU (Table II: yes)")
        fc_units: PositiveInt = Field(32, description="hidden FC layer size (Table II: 32)")
        activation: Activation = activation_field()
        negative_slope: float = negative_slope_field()
        dropout: float = Field(0.15, ge=0, lt=1, description="dropout after the hidden FC layer (authors' code: 0.15)")
        n_classes: PositiveInt | None = Field(
            None, description="event classes; default: the dataset's count (a different count is an error)"
        )

    def __init__(self, config=None, *, task: str = "event", n_classes: int, in_channels: int, in_features: int,
                 time_stride: int = 1) -> None:
        super().__init__(config, task=task, n_classes=n_classes, in_channels=in_channels, in_features=in_features,
                         time_stride=time_stride)
        check_class_count(self)
        cfg = self.config
        # Each frame's input is the whole pooled map column: channels x frequency bins (128 x 2 = 256 in Table II).
        self.gru = nn.GRU(in_channels * in_features, cfg.hidden_size, num_layers=cfg.num_layers,
                          bidirectional=cfg.bidirectional, batch_first=True)
        directions = 2 if cfg.bidirectional else 1
        self.classifier = nn.Sequential(
            nn.Linear(cfg.hidden_size * directions, cfg.fc_units),
            make_activation(cfg),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.fc_units, n_classes),
        )

    def forward(self, feature_map: Tensor) -> Tensor:
        batch, channels, frames, freq = feature_map.shape
        x = feature_map.permute(0, 2, 1, 3).reshape(batch, frames, channels * freq)  # [B, T', C * F']
        # The recurrence stays fp32 under bf16 autocast (train.precision): autocast would cast the weights and run
        # every time step's small matmuls in bf16, slower than fp32 on CPU and less accurate over long sequences.
        with torch.autocast(x.device.type, enabled=False):
            x, _ = self.gru(x.float())
        x = self.classifier(x)  # logits [B, T', M]
        if self.time_stride > 1:
            # Back to the feature frame rate: each pooled frame stands for time_stride input frames.
            x = x.repeat_interleave(self.time_stride, dim=1)
        return x
