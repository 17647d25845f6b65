"""CP-Mobile (003 Fig. 1; Schmid et al., DCASE 2023 and the DCASE 2024 Task 1 baseline) as an encoder and a head.

Read top to bottom like the references (``CPJKU/dcase2024_task1_baseline`` models/baseline.py and
``fschmid56/cpjku_dcase23`` models/cp_mobile_clean.py)::

    stem       3x3 conv stride 2 -> base/4 channels, BN, ReLU; 3x3 conv stride 2 -> base channels, BN, ReLU
    stages     blocks b1, b2, ... (n_blocks per stage); stage s has make_divisible(base * multiplier^s, 8) channels
    block      1x1 expand (x expansion_rate, to a multiple of 8), BN, ReLU
               3x3 depthwise, stride (1 or 2 per axis), BN, ReLU
               1x1 project, BN
               + shortcut where in == out channels (3x3 average pool when strided), [GRN], ReLU
    classifier 1x1 conv to classes (no bias), BN, global average pool                    = `cpmobile_classifier`

003 Fig. 1 names the three block types: a *transition* block changes the channel count (no shortcut), a *standard*
block keeps it (identity shortcut) and a *spatial downsampling* block keeps it with a stride (average-pooled
shortcut). All three are ``CPMobileBlock``; which one a block is follows from its channels and stride.

The DCASE 2024 baseline is the default config (base 32, multiplier 1.8, expansion 2.1, blocks (3, 2, 1), strides
b3 = time 2 and b4 = frequency 2, no GRN): 61,148 parameters with its classifier on 10 scenes. The 2023 CP-Mobile adds
global response normalisation (GRN, ConvNeXt V2) after every block and uses other widths and strides
(``recipes/base/cpmobile_2023.yaml`` shows its default config).

Layout: jasc maps are ``[B, C, T, F]`` (time before frequency); the references lay them out ``[B, C, F, T]``. Strides
here are written ``[time, frequency]``, so the baseline's ``b3=(1, 2)`` (mel 1, time 2) is ``b3: [2, 1]`` here. Every
kernel is square and padded symmetrically, so the swap changes no output size, parameter or MAC.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, field_validator
from torch import Tensor, nn

from jasc_core import ConfigError, Encoder, Head


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``), never more than 10 % down.

    The MobileNet rule both references use to size channels (their ``models/helpers/utils.py``).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn(in_channels: int, out_channels: int, *, kernel_size: int = 1, stride: tuple[int, int] | int = 1,
            groups: int = 1, activation: bool = True) -> nn.Sequential:
    """Conv (no bias: batch norm follows), BN, optional ReLU: torchvision's ``Conv2dNormActivation`` as the
    references use it, 'same' padding for odd kernels."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2, Eq. 1-3) with one scalar gamma and beta, as in the 2023 CP-Mobile.

    ``x + gamma * x * N(x) + beta`` where ``N(x)`` is each channel's L2 norm over the map divided by the mean norm over
    channels. gamma and beta start at zero, so a fresh GRN is the identity.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        norms = torch.linalg.vector_norm(x, ord=2, dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
        relative = norms / (norms.mean(dim=1, keepdim=True) + 1e-6)
        return self.gamma * (x * relative) + self.beta + x


class CPMobileBlock(nn.Module):
    """One CP-Mobile block (003 Fig. 1 a-c): inverted bottleneck, shortcut when the channel count is kept."""

    def __init__(self, in_channels: int, out_channels: int, *, expansion_rate: float, stride: tuple[int, int],
                 grn: bool) -> None:
        super().__init__()
        hidden = make_divisible(in_channels * expansion_rate, 8)
        self.block = nn.Sequential(
            conv_bn(in_channels, hidden, kernel_size=1),
            conv_bn(hidden, hidden, kernel_size=3, stride=stride, groups=hidden),  # depthwise
            conv_bn(hidden, out_channels, kernel_size=1, activation=False),  # linear projection
        )
        self.kind = "transition"
        self.shortcut: nn.Module | None = None
        if in_channels == out_channels:
            strided = tuple(stride) != (1, 1)
            # A strided shortcut is a 3x3 average pool with the same stride and padding as the depthwise conv,
            # so that both paths give maps of the same size.
            self.shortcut = nn.AvgPool2d(3, stride=stride, padding=1) if strided else nn.Identity()
            self.kind = "spatial_downsampling" if strided else "standard"
        self.norm = GRN() if grn else nn.Identity()
        self.activation = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.activation(self.norm(out))


class CPMobile(Encoder):
    """CP-Mobile encoder (003 Fig. 1): strided conv stem, then transition / standard / downsampling blocks."""

    name = "cpmobile"

    class Config(BaseModel):
        base_channels: PositiveInt = Field(
            32, description="channels after the stem and in stage 1, rounded to a multiple of 8 (baseline: 32)"
        )
        channels_multiplier: PositiveFloat = Field(
            1.8, description="width growth per stage: stage s has base * multiplier^s channels (baseline: 1.8)"
        )
        expansion_rate: PositiveFloat = Field(
            2.1, description="inverted-bottleneck expansion of each block's 1x1 conv (baseline: 2.1)"
        )
        n_blocks: list[PositiveInt] = Field(
            [3, 2, 1], min_length=1, description="blocks per stage; blocks are named b1, b2, ... (baseline: 3, 2, 1)"
        )
        strides: dict[str, tuple[PositiveInt, PositiveInt]] = Field(
            {"b3": (2, 1), "b4": (1, 2)},
            description="[time, frequency] stride of a block's depthwise conv, by block name; others stride 1 "
            "(baseline: b3 time 2, b4 frequency 2)",
        )
        grn: bool = Field(False, description="global response norm after every block (2023 CP-Mobile: yes; 2024 "
                                             "baseline: no)")

        @field_validator("strides")
        @classmethod
        def _block_names(cls, value: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
            bad = [key for key in value if not (key.startswith("b") and key[1:].isdigit() and int(key[1:]) >= 1)]
            if bad:
                raise ValueError(f"stride keys are block names b1, b2, ...; got {bad}")
            return value

    def __init__(self, config=None, *, n_features: int = 256) -> None:
        super().__init__(config, n_features=n_features)
        cfg = self.config
        n_total = sum(cfg.n_blocks)
        unknown = sorted(key for key in cfg.strides if int(key[1:]) > n_total)
        if unknown:
            raise ConfigError(f"encoder cpmobile: strides name {unknown} but there are only {n_total} blocks "
                              f"(n_blocks {cfg.n_blocks})")
        base = make_divisible(cfg.base_channels, 8)
        widths = [base] + [make_divisible(base * cfg.channels_multiplier ** stage, 8)
                           for stage in range(len(cfg.n_blocks))]
        self.stem = nn.Sequential(
            conv_bn(1, base // 4, kernel_size=3, stride=2),
            conv_bn(base // 4, base, kernel_size=3, stride=2),
        )
        self.stages = nn.Sequential()
        channels, index = base, 0
        time_stride, freq = 4, _strided(_strided(n_features, 2), 2)
        for stage, count in enumerate(cfg.n_blocks):
            blocks = nn.Sequential()
            for _ in range(count):
                index += 1
                stride = tuple(cfg.strides.get(f"b{index}", (1, 1)))
                blocks.add_module(f"b{index}", CPMobileBlock(channels, widths[stage + 1], stride=stride,
                                                             expansion_rate=cfg.expansion_rate, grn=cfg.grn))
                channels = widths[stage + 1]
                time_stride *= stride[0]
                freq = _strided(freq, stride[1])
            self.stages.add_module(f"s{stage + 1}", blocks)
        self.out_channels = channels
        self.out_features = freq
        self.time_stride = time_stride

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() != 3 or features.shape[-1] != self.n_features:
            raise ValueError(f"cpmobile was built for {self.n_features} features and takes [batch, frames, "
                             f"{self.n_features}], got {list(features.shape)}")
        return self.stages(self.stem(features.unsqueeze(1)))  # [B, C, ~T / time_stride, F']


def _strided(size: int, stride: int) -> int:
    """Output length of a 3x3 conv with padding 1 and ``stride`` on ``size`` inputs."""
    return math.floor((size - 1) / stride) + 1


class CPMobileClassifier(Head):
    """CP-Mobile classifier: 1x1 conv to the classes (no bias), batch norm, global average pool; scene logits."""

    name = "cpmobile_classifier"
    tasks = ("scene",)
    conformance_kwargs = {"task": "scene", "n_classes": 3, "in_channels": 8, "in_features": 4, "time_stride": 1}

    class Config(BaseModel):
        n_classes: PositiveInt | None = Field(
            None, description="scene classes; default: the dataset's count (a different count is an error)"
        )

    def __init__(self, config=None, *, task: str = "scene", n_classes: int, in_channels: int, in_features: int,
                 time_stride: int = 1) -> None:
        super().__init__(config, task=task, n_classes=n_classes, in_channels=in_channels, in_features=in_features,
                         time_stride=time_stride)
        stated = self.config.n_classes
        if stated is not None and stated != n_classes:
            raise ConfigError(f"model.heads.scene.n_classes is {stated} but the data has {n_classes} scene classes")
        self.classifier = nn.Sequential(
            nn.Conv2d(in_channels, n_classes, kernel_size=1, bias=False),
            nn.BatchNorm2d(n_classes),
            nn.AdaptiveAvgPool2d(1),
        )

    def forward(self, feature_map: Tensor) -> Tensor:
        return self.classifier(feature_map).flatten(1)  # logits [B, N]
