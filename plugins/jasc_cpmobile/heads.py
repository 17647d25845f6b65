"""Heads that work on any encoder's frame embeddings: 003's attention scene decoder and RNN event decoder.

A frame embedding is one column of the encoder's map ``[B, C, T', F']``: the ``C x F'`` values of one time step
(003 Fig. 4: the shared encoder "builds a sequence of embeddings, one per moment in time"). Both heads return
logits (the softmax / sigmoid live in the losses and post-processing).

- ``attention`` (scene, 003 Fig. 4a/c): attention weights over time, the weighted mean embedding, one linear layer.
- ``rnn`` (event, 003 Fig. 4b/c): a GRU over the embeddings and a frame-wise linear layer. With
  ``clip_output: attention`` it also returns DESED's attention-pooled clip-level (weak) output, so that
  ``desed_cnn`` + ``rnn`` is the DCASE 2023 Task 4 baseline CRNN; in training the pooling leaves out the classes a
  clip's dataset does not annotate (the 2024 baseline's class mask).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, PositiveInt
from torch import Tensor, nn

from jasc_core import ConfigError, Head


def frame_embeddings(feature_map: Tensor) -> Tensor:
    """``[B, C, T', F']`` -> ``[B, T', C * F']``, channel-major within a frame."""
    batch, channels, frames, freq = feature_map.shape
    return feature_map.permute(0, 2, 1, 3).reshape(batch, frames, channels * freq)


def check_class_count(head: Head) -> None:
    stated = head.config.n_classes
    if stated is not None and stated != head.n_classes:
        raise ConfigError(
            f"model.heads.{head.task}.n_classes is {stated} but the data has {head.n_classes} {head.task} classes"
        )


def n_classes_field(task: str) -> Any:
    return Field(None, description=f"{task} classes; default: the dataset's count (a different count is an error)")


class AttentionSceneHead(Head):
    """Attention over time on frame embeddings, then a linear layer to scene logits (003 Fig. 4a)."""

    name = "attention"
    tasks = ("scene",)
    conformance_kwargs = {"task": "scene", "n_classes": 3, "in_channels": 8, "in_features": 4, "time_stride": 1}

    class Config(BaseModel):
        attention_units: PositiveInt | None = Field(
            32, description="hidden units of the attention scorer (score = v . tanh(W e_t)); null: one linear "
                            "score per frame (score = w . e_t)",
        )
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the pooled embedding before the linear layer")
        n_classes: PositiveInt | None = n_classes_field("scene")

    def __init__(self, config=None, *, task: str = "scene", n_classes: int, in_channels: int, in_features: int,
                 time_stride: int = 1) -> None:
        super().__init__(config, task=task, n_classes=n_classes, in_channels=in_channels, in_features=in_features,
                         time_stride=time_stride)
        check_class_count(self)
        cfg = self.config
        width = in_channels * in_features
        if cfg.attention_units is None:
            self.score = nn.Linear(width, 1)
        else:
            # Additive attention (Bahdanau-style): a small MLP scores each frame.
            self.score = nn.Sequential(nn.Linear(width, cfg.attention_units), nn.Tanh(),
                                       nn.Linear(cfg.attention_units, 1, bias=False))
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, feature_map: Tensor) -> Tensor:
        frames = frame_embeddings(feature_map)  # [B, T', D]
        weights = torch.softmax(self.score(frames), dim=1)  # [B, T', 1], sums to 1 over time
        pooled = (weights * frames).sum(dim=1)  # [B, D]
        return self.classifier(self.dropout(pooled))  # logits [B, N]


class RNNEventHead(Head):
    """GRU over frame embeddings, frame-wise linear to event logits (003 Fig. 4b); optional DESED weak output."""

    name = "rnn"
    tasks = ("event",)
    uses_class_mask = True

    class Config(BaseModel):
        hidden_size: PositiveInt = Field(128, description="GRU units per direction (DESED 2023: 128)")
        num_layers: PositiveInt = Field(2, description="stacked GRU layers (DESED 2023: 2)")
        bidirectional: bool = Field(True, description="bidirectional GRU (DESED 2023: yes)")
        rnn_dropout: float = Field(0.0, ge=0, lt=1, description="dropout between GRU layers (DESED 2023: 0)")
        dropout: float = Field(0.5, ge=0, lt=1, description="dropout on the GRU output (DESED 2023: 0.5)")
        clip_output: Literal["none", "attention"] = Field(
            "none", description="clip-level (weak) output: none, or DESED's attention pooling of the frame "
                                "probabilities (returns {'frame', 'clip'} logits)",
        )
        n_classes: PositiveInt | None = n_classes_field("event")

    def __init__(self, config=None, *, task: str = "event", n_classes: int, in_channels: int, in_features: int,
                 time_stride: int = 1) -> None:
        super().__init__(config, task=task, n_classes=n_classes, in_channels=in_channels, in_features=in_features,
                         time_stride=time_stride)
        check_class_count(self)
        cfg = self.config
        self.gru = nn.GRU(in_channels * in_features, cfg.hidden_size, num_layers=cfg.num_layers,
                          bidirectional=cfg.bidirectional, dropout=cfg.rnn_dropout if cfg.num_layers > 1 else 0.0,
                          batch_first=True)
        width = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(width, n_classes)  # DESED: dense
        self.attention = nn.Linear(width, n_classes) if cfg.clip_output == "attention" else None  # dense_softmax

    def forward(self, feature_map: Tensor, class_mask: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        # The recurrence stays fp32 under bf16 autocast (train.precision): autocast would cast the weights and run
        # every time step's small matmuls in bf16, slower than fp32 on CPU and less accurate over long sequences.
        with torch.autocast(feature_map.device.type, enabled=False):
            x, _ = self.gru(frame_embeddings(feature_map).float())
        x = self.dropout(x)
        frame_logits = self.classifier(x)  # [B, T', M]
        outputs = self._upsample(frame_logits)
        if self.attention is None:
            return outputs
        # DESED's weak output: strong probabilities averaged over time with attention weights. Its softmax runs over
        # the classes (dim -1), not over time; kept as in the reference. The result is a probability, returned as a
        # logit so that every head output is a logit.
        strong = frame_logits.sigmoid()
        scores = self.attention(x)  # [B, T', M]
        if class_mask is not None:
            # DESED 2024: a class the clip's dataset does not annotate takes no share of the softmax over classes, so
            # its logit cannot move the other classes' pooling weights (and gets no gradient through them).
            scores = scores.masked_fill(~class_mask.bool()[:, None, :], torch.finfo(scores.dtype).min)
        attention = torch.softmax(scores, dim=-1).clamp(min=1e-7, max=1)
        clip = (strong * attention).sum(dim=1) / attention.sum(dim=1)  # [B, M]
        return {"frame": outputs, "clip": torch.logit(clip.clamp(1e-7, 1 - 1e-7))}

    def _upsample(self, frame_logits: Tensor) -> Tensor:
        # Back to the feature frame rate: each pooled frame stands for time_stride input frames.
        if self.time_stride > 1:
            return frame_logits.repeat_interleave(self.time_stride, dim=1)
        return frame_logits
