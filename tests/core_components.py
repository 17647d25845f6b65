"""A tiny plugin module for core tests: one component per kind, registered like a third-party plugin would."""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field

from jasc_core import Dataset, Encoder, FeatureExtractor, Head, Schedule, ThresholdOptimizer, Weighting, hookimpl


class ToyFeatures(FeatureExtractor):
    """Toy features: frames of raw samples."""

    name = "toy_features"

    class Config(BaseModel):
        hop: int = Field(10, ge=1, description="hop in samples")

    def __init__(self, config=None):
        super().__init__(config)
        self.sample_rate, self.hop_seconds, self.n_features = 100, self.config.hop / 100, self.config.hop

    def forward(self, waveform):
        return waveform.reshape(waveform.shape[0], -1, self.config.hop)

    def num_frames(self, num_samples):
        return num_samples // self.config.hop


class ToyEncoder(Encoder):
    """Toy encoder: one linear layer."""

    name = "toy_encoder"

    class Config(BaseModel):
        channels: int = Field(4, ge=1, description="output channels")

    def __init__(self, config=None, *, n_features=64):
        super().__init__(config, n_features=n_features)
        self.linear = torch.nn.Linear(n_features, self.config.channels)
        self.out_channels, self.out_features = self.config.channels, 1

    def forward(self, features):
        return self.linear(features).transpose(1, 2).unsqueeze(-1)


class ToySceneHead(Head):
    """Toy scene head."""

    name = "toy_scene"
    tasks = ("scene",)

    class Config(BaseModel):
        pass

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.fc = torch.nn.Linear(self.in_channels, self.n_classes)

    def forward(self, feature_map):
        return self.fc(feature_map.amax(dim=(2, 3)))


class ToyWeighting(Weighting):
    """Toy weighting with a scale."""

    name = "toy_weighting"

    class Config(BaseModel):
        scale: float = Field(1.0, gt=0, description="multiplies the summed losses")
        temperature: float = Field(2.0, gt=0, description="unused, for suggestions")

    def combine(self, losses, context):
        return self.config.scale * sum(losses.values())


class ToySchedule(Schedule):
    """Toy schedule: all tasks."""

    name = "toy_schedule"

    class Config(BaseModel):
        pass


class ToyDataset(Dataset):
    """Toy dataset with a root."""

    name = "toy_data"

    class Config(BaseModel):
        root: str = Field("data", description="dataset root")

    def splits(self):
        return ["train"]


class ToyThresholds(ThresholdOptimizer):
    """Toy fixed threshold."""

    name = "toy_thresholds"

    class Config(BaseModel):
        value: float = Field(0.5, ge=0, le=1, description="the threshold")


COMPONENTS = [ToyFeatures, ToyEncoder, ToySceneHead, ToyWeighting, ToySchedule, ToyDataset, ToyThresholds]


@hookimpl
def jasc_register_components(register):
    for cls in COMPONENTS:
        register(cls)


TOY_RECIPE = """\
data: {name: toy_data, root: somewhere}
features: {name: toy_features}
model:
  encoder: {name: toy_encoder}
  heads:
    scene: {name: toy_scene}
weighting: {name: toy_weighting, scale: 2.0}
schedule: {name: toy_schedule}
train: {epochs: 2}
"""
