"""``fusion``: a trainable encoder whose map is joined with frozen embeddings (the DCASE 2024 Task 4 baseline's CRNN).

Reads the ``with_embeddings`` features ``[B, T, F + E]``: the first F columns go through the inner encoder (e.g.
``desed_cnn``) to a map ``[B, C, T', F']``; the last E (the frozen encoder's embeddings at the feature frame rate)
are average-pooled to the map's T' frames (``adaptive_avg_pool1d``, as the baseline's ``aggregation_type:
pool1d``), repeated over F', concatenated with the map's channels and projected back to ``out_channels`` by a 1x1
convolution (the baseline's ``cat_tf`` Linear when F' = 1). Heads (the ``rnn`` head: the baseline's BiGRU) read the
result like any encoder's map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import Tensor, nn

from jasc_core import ConfigError, Encoder, component


class FusionEncoder(Encoder):
    """An inner encoder's map + frozen frame embeddings pooled to its frame rate, concatenated, 1x1-projected."""

    name = "fusion"

    class Config(BaseModel):
        encoder: dict = Field(description="the trainable encoder block, e.g. {name: desed_cnn}")
        embedding_dim: int = Field(768, ge=1, description="embedding columns at the end of the features (768 for "
                                                         "BEATs; the with_embeddings front end's frozen width)")
        out_channels: int | None = Field(None, ge=1, description="channels after the projection (default: the "
                                                                 "inner encoder's)")

    def __init__(self, config=None, *, n_features: int = 64) -> None:
        super().__init__(config, n_features=n_features)
        c = self.config
        if n_features <= c.embedding_dim:
            raise ConfigError(f"model.encoder.embedding_dim: {c.embedding_dim} embedding columns leave none of the "
                              f"{n_features} features for the inner encoder (use the with_embeddings features)")
        if "name" not in c.encoder:
            raise ConfigError("model.encoder.encoder: a block with a name, e.g. {name: desed_cnn}")
        rest = {k: v for k, v in c.encoder.items() if k != "name"}
        self.inner = component("encoder", c.encoder["name"])(rest, n_features=n_features - c.embedding_dim)
        self.out_channels = c.out_channels or self.inner.out_channels
        self.out_features = self.inner.out_features
        self.time_stride = getattr(self.inner, "time_stride", 1)
        self.cat_tf = nn.Conv2d(self.inner.out_channels + c.embedding_dim, self.out_channels, kernel_size=1)

    def forward(self, features: Tensor) -> Tensor:
        split = features.shape[-1] - self.config.embedding_dim
        feature_map = self.inner(features[..., :split])  # [B, C, T', F']
        frames, bands = feature_map.shape[2], feature_map.shape[3]
        pooled = F.adaptive_avg_pool1d(features[..., split:].transpose(1, 2), frames)  # [B, E, T']
        joined = torch.cat([feature_map, pooled.unsqueeze(-1).expand(-1, -1, -1, bands)], dim=1)
        return self.cat_tf(joined)
