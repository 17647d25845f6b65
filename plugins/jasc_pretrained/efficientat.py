"""EfficientAT MobileNetV3 ``mn`` models (Schmid, Koutini and Widmer, "Efficient Large-Scale Audio Tagging via
Transformer-to-CNN Knowledge Distillation", ICASSP 2023), any width multiplier (mn04 = 0.4, mn10 = 1.0, ...).

Read top to bottom like the reference (``fschmid56/EfficientAT`` models/mn/model.py, block_types.py, utils.py and
models/preprocess.py), whose parameter names and shapes this module keeps, so that a released ``mnXX_as*.pt`` state
dict loads into ``MN(width_mult=...)`` with ``strict=True``::

    front end   efficientat_mel: pre-emphasis (x[n+1] - 0.97 x[n]), 1024-point STFT of 800-sample Hann windows every
                320 samples (32 kHz, centred), power, Kaldi mel filterbank (128 mels, 0 - 15 kHz),
                (log(mel + 1e-5) + 4.5) / 5                                   (AugmentMelSTFT in eval mode)
    features.0  3x3 conv stride 2 -> 16w channels, BN, hardswish
    features.1-15  inverted residual blocks of MobileNetV3-Large (Howard et al. 2019, Table 1):
                1x1 expand, BN, act; kxk depthwise (stride), BN, act; [squeeze-excitation on channels];
                1x1 project, BN; + input where stride 1 and channels unchanged
    features.16 1x1 conv -> 6 x (last block's channels), BN, hardswish    -> the frame-level map (before pooling)
    classifier  global average pool, Linear -> 1280w, hardswish, dropout, Linear -> 527 AudioSet classes

All channel counts are ``make_divisible(c * width_mult, 8)``. BN has eps 0.001. Squeeze-excitation: channel mean,
Linear to ``make_divisible(C // 4, 8)``, ReLU, Linear back, sigmoid, scale (the reference wraps it in a
"concurrent" SE block with one member, hence the key ``block.2.conc_se_layers.0``). The reference lays maps out
``[B, C, mel, time]``; ``MN`` keeps that layout (the kernels are stored that way) and the jasc encoder transposes
to ``[B, C, time, mel]`` at its edges. Training-time augmentations of the reference front end (random mel band
edges, SpecAugment masks) are left to jasc's ``augment`` components.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import Tensor, nn

from jasc_core import ConfigError, Encoder, FeatureExtractor
from jasc_pretrained.kaldi import kaldi_mel_banks
from jasc_pretrained.layer_decay import assign_lr_scales
from jasc_pretrained.weights import load_into, random_init_phrase

#: MobileNetV3-Large's inverted residual blocks (Howard et al. 2019, Table 1) at width 1:
#: (input channels, kernel, expanded channels, output channels, squeeze-excitation, hardswish, stride).
MOBILENET_V3_LARGE = (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
)
#: Width multipliers of the released models by name prefix (EfficientAT helpers/utils.py NAME_TO_WIDTH).
WIDTHS = {"mn01": 0.1, "mn02": 0.2, "mn04": 0.4, "mn05": 0.5, "mn06": 0.6, "mn08": 0.8, "mn10": 1.0, "mn12": 1.2,
          "mn14": 1.4, "mn16": 1.6, "mn20": 2.0, "mn30": 3.0, "mn40": 4.0}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``divisor``), never more than 10 % down (TF slim)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                activation: type[nn.Module] | None = None) -> nn.Sequential:
    """Conv (no bias), BN (eps 0.001, momentum 0.01), optional activation: torchvision's ``ConvNormActivation``."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=(kernel_size - 1) // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels, eps=0.001, momentum=0.01),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel squeeze-excitation (Hu et al. 2018): mean over mel and time, bottleneck MLP, sigmoid scale."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze_channels)
        self.fc2 = nn.Linear(squeeze_channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * scale[:, :, None, None]


class ConcurrentSEBlock(nn.Module):
    """The reference's container of squeeze-excitations over several axes; the released models use one (channels),
    whose output is the block's output (their max over one member)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels, make_divisible(channels // 4, 8))])

    def forward(self, x: Tensor) -> Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """MobileNetV3 block: [1x1 expand], depthwise kxk, [SE], 1x1 project, residual where shapes allow."""

    def __init__(self, in_channels: int, kernel: int, expanded: int, out_channels: int, use_se: bool,
                 use_hardswish: bool, stride: int) -> None:
        super().__init__()
        activation = nn.Hardswish if use_hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(conv_bn_act(in_channels, expanded, activation=activation))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, activation=activation))
        if use_se:
            layers.append(ConcurrentSEBlock(expanded))
        layers.append(conv_bn_act(expanded, out_channels))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


class MN(nn.Module):
    """EfficientAT's MobileNetV3 on mel spectrograms ``[B, 1, mel, time]`` (reference names and layout)."""

    def __init__(self, width_mult: float = 1.0, num_classes: int = 527, dropout: float = 0.2) -> None:
        super().__init__()
        blocks = [(make_divisible(c_in * width_mult), k, make_divisible(c_exp * width_mult),
                   make_divisible(c_out * width_mult), se, hs, s)
                  for c_in, k, c_exp, c_out, se, hs, s in MOBILENET_V3_LARGE]
        last_in = blocks[-1][3]
        self.out_channels = 6 * last_in
        self.features = nn.Sequential(
            conv_bn_act(1, blocks[0][0], 3, 2, activation=nn.Hardswish),
            *(InvertedResidual(*block) for block in blocks),
            conv_bn_act(last_in, self.out_channels, activation=nn.Hardswish),
        )
        hidden = make_divisible(1280 * width_mult)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(self.out_channels, hidden), nn.Hardswish(),
            nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        for module in self.modules():  # the reference's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward_features(self, mel: Tensor) -> Tensor:
        """Mel ``[B, 1, mel, time]`` -> feature map before pooling ``[B, C, mel / 32, time / 32]``."""
        return self.features(mel)

    def forward_head(self, feature_map: Tensor) -> tuple[Tensor, Tensor]:
        """Feature map -> (AudioSet logits ``[B, classes]``, pooled embedding ``[B, C]``), the reference's
        ``(x, features)``."""
        return self.classifier(feature_map), feature_map.mean(dim=(2, 3))

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        return self.forward_head(self.forward_features(mel))


def efficientat_mel(waveform: Tensor, *, sample_rate: int = 32000, n_fft: int = 1024, win_length: int = 800,
                    hop_length: int = 320, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None) -> Tensor:
    """Waveforms ``[B, samples]`` -> EfficientAT's normalised log mel ``[B, n_mels, 1 + (samples - 1) // hop]``
    (AugmentMelSTFT.forward in eval mode; ``fmax`` None is the reference's ``sr // 2 - 1000``)."""
    fmax = sample_rate // 2 - 1000 if fmax is None else fmax
    emphasised = waveform[:, 1:] - 0.97 * waveform[:, :-1]
    window = torch.hann_window(win_length, periodic=False, dtype=waveform.dtype, device=waveform.device)
    spectrum = torch.stft(emphasised, n_fft, hop_length=hop_length, win_length=win_length, window=window,
                          center=True, return_complex=True)
    power = spectrum.real.pow(2) + spectrum.imag.pow(2)  # [B, n_fft // 2 + 1, frames]
    banks = F.pad(kaldi_mel_banks(n_mels, n_fft, sample_rate, fmin, fmax), (0, 1)).to(power)
    return ((banks @ power + 1e-5).log() + 4.5) / 5.0


# --- jasc components -------------------------------------------------------------------------------------------------


class EfficientATMel(FeatureExtractor):
    """EfficientAT's front end: 32 kHz pre-emphasised STFT power, Kaldi mel (128, 0-15 kHz), (log + 4.5) / 5."""

    name = "efficientat_mel"

    class Config(BaseModel):
        n_mels: int = Field(128, ge=4, description="mel bands (128 for every released model but mn10_as_mels_*)")
        hop_samples: int = Field(320, ge=1, description="frame hop at 32 kHz (320 = 10 ms; mn10_as_hop_* use others)")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.sample_rate, self.n_features = 32000, self.config.n_mels
        self.hop_seconds = self.config.hop_samples / self.sample_rate

    def forward(self, waveform: Tensor) -> Tensor:
        mel = efficientat_mel(waveform.float(), n_mels=self.config.n_mels, hop_length=self.config.hop_samples)
        return mel.transpose(1, 2)

    def num_frames(self, num_samples: int) -> int:
        return 1 + (num_samples - 1) // self.config.hop_samples  # pre-emphasis drops one sample, STFT is centred


def _strided_size(size: int, kernels: tuple[int, ...]) -> int:
    """Output length after the stride-2 convolutions with these kernels (padding (k - 1) // 2)."""
    for kernel in kernels:
        size = (size + 2 * ((kernel - 1) // 2) - kernel) // 2 + 1
    return size


class EfficientATEncoder(Encoder):
    """EfficientAT MobileNetV3 (mn04, mn10, ...: any width), official checkpoint names; map [B, C, T/32, F/32]."""

    name = "efficientat"

    class Config(BaseModel):
        width_mult: float = Field(1.0, gt=0, description="channel width multiplier: 0.4 = mn04, 1.0 = mn10, "
                                                         "4.0 = mn40 (the released names' digits / 10)")
        num_classes: int = Field(527, ge=1, description="outputs of the AudioSet classifier kept for clip outputs "
                                                        "and for loading the released checkpoints (527)")
        dropout: float = Field(0.2, ge=0, lt=1, description="dropout before the classifier's last layer")
        lr_decay: float = Field(1.0, gt=0, le=1, description="layer-wise learning-rate decay over the 17 blocks of "
                                "features: features.k trains at lr * lr_decay ** (17 - k), the classifier and heads at lr (1: none)")
        weights: str | None = Field(None, description="pretrained weights: a name of `jasc weights list` (fetched "
                                                      "by `jasc weights download NAME`) or a state dict file")
        allow_random_init: bool = Field(False, description="train without pretrained weights (random initial "
                                                           "weights); the run's outputs then say so")

    def __init__(self, config=None, *, n_features: int = 128) -> None:
        super().__init__(config, n_features=n_features)
        self.mn = MN(width_mult=self.config.width_mult, num_classes=self.config.num_classes,
                     dropout=self.config.dropout)
        strided_kernels = (3,) + tuple(k for _, k, _, _, _, _, s in MOBILENET_V3_LARGE if s == 2)
        self.out_channels = self.mn.out_channels
        self.out_features = _strided_size(n_features, strided_kernels)
        self.time_stride = 2 ** len(strided_kernels)
        c = self.config
        if c.lr_decay != 1.0:
            assign_lr_scales([*([block] for block in self.mn.features), [self.mn.classifier]], c.lr_decay)
        #: Said wherever the run names a stand-in (tables, run.json) when the encoder is not the pretrained one.
        self.stand_in: str | None = None
        if c.weights is not None:
            load_into(self.mn, c.weights, self.name, c.model_dump())
        elif c.allow_random_init:
            self.stand_in = random_init_phrase(self.name)
        else:
            raise ConfigError("model.encoder: encoder 'efficientat' expects pretrained weights: set weights: NAME "
                              "(see `jasc weights list`) or a state dict path, or allow_random_init: true to train "
                              "from random weights")

    def forward(self, features: Tensor) -> Tensor:
        feature_map = self.mn.forward_features(features.transpose(1, 2).unsqueeze(1))  # [B, C, mel', time']
        return feature_map.transpose(2, 3)

    def clip_outputs(self, features: Tensor) -> dict[str, Tensor]:
        """Clip level: AudioSet ``logits`` [B, 527] and the pooled ``embedding`` [B, C] (the reference's outputs)."""
        logits, embedding = self.mn.forward_head(self.mn.forward_features(features.transpose(1, 2).unsqueeze(1)))
        return {"logits": logits, "embedding": embedding}
