"""The joint model: one shared encoder and one head per task, built from a recipe's ``model`` block.

A model is an encoder plus any non-empty subset of task heads: encoder + scene head is a single-task ASC model,
encoder + event head a single-task SED model (001 Table IV's CNN and CNN-BiGRU rows), both heads the MTL model.

    model:
      encoder: {name: tonami_cnn}
      heads: {scene: {name: tonami_scene}, event: {name: bigru}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from jasc_core.components import TASKS, Encoder, Head
from jasc_core.errors import ConfigError
from jasc_core.registry import component


class JointModel(nn.Module):
    """Shared encoder + ``nn.ModuleDict`` of heads keyed by task; ``forward`` returns ``{task: logits}``."""

    def __init__(self, encoder: Encoder, heads: Mapping[str, Head]) -> None:
        super().__init__()
        if not heads:
            raise ConfigError(f"model.heads: a model needs at least one head; tasks: {', '.join(TASKS)}")
        for task, head in heads.items():
            if task not in TASKS:
                raise ConfigError(f"model.heads.{task}: unknown task; tasks: {', '.join(TASKS)}")
            if getattr(head, "task", task) != task:
                raise ConfigError(f"model.heads.{task}: head '{head.name}' was built for task '{head.task}'")
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads))

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        """Features ``[B, T, F]`` -> ``{"scene": [B, N], "event": [B, T, M]}`` (logits, for the heads present)."""
        feature_map = self.encoder(features)
        outputs = {task: head(feature_map) for task, head in self.heads.items()}
        if isinstance(outputs.get("event"), Mapping):
            # An event head with its own clip-level (weak) output returns {"frame", "clip"}; this engine trains frame
            # outputs only, so it keeps the frame logits (the training-core rewrite takes both).
            outputs["event"] = outputs["event"]["frame"]
        if "event" in outputs:
            outputs["event"] = match_frames(outputs["event"], features.shape[1])
        return outputs


def match_frames(frame_logits: Tensor, n_frames: int) -> Tensor:
    """Trim or extend ``[B, T', M]`` to ``n_frames`` frames.

    Time pooling floors the length, so an event head that undoes an encoder's ``time_stride`` can come back a few
    frames short of its input; the missing tail frames repeat the last one (nearest-neighbour upsampling).
    """
    frames = frame_logits.shape[1]
    if frames == n_frames:
        return frame_logits
    if frames > n_frames:
        return frame_logits[:, :n_frames]
    tail = frame_logits[:, -1:].expand(-1, n_frames - frames, -1)
    return torch.cat([frame_logits, tail], dim=1)


def block_name_and_config(block: BaseModel | Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """A component block (a recipe's pydantic block or a plain ``{name: ..., **config}`` dict) -> (name, config)."""
    data = block.model_dump() if isinstance(block, BaseModel) else dict(block)
    name = data.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: missing; every component block names a registered component")
    return name, data


def _field(block: BaseModel | Mapping[str, Any], key: str) -> Any:
    return getattr(block, key, None) if isinstance(block, BaseModel) else block.get(key)


def build_model(
    model_block: BaseModel | Mapping[str, Any], n_features: int, n_classes: Mapping[str, int]
) -> JointModel:
    """Build the encoder and each head of a recipe's ``model`` block.

    ``n_features``: feature bins of the encoder's input. ``n_classes``: the class count of each task the model has a
    head for (the dataset's label vocabulary sizes). A head block may state ``n_classes`` itself; then it must agree.
    """
    encoder_block = _field(model_block, "encoder")
    heads_block = _field(model_block, "heads") or {}
    if encoder_block is None:
        raise ConfigError("model.encoder: missing; a model is an encoder plus at least one head")
    heads_block = {task: block for task, block in dict(heads_block).items() if block is not None}
    if not heads_block:
        raise ConfigError(f"model.heads: a model needs at least one head; tasks: {', '.join(TASKS)}")

    name, config = block_name_and_config(encoder_block, "model.encoder")
    encoder = component("encoder", name)(config, n_features=n_features)

    heads: dict[str, Head] = {}
    for task, block in heads_block.items():
        if task not in TASKS:
            raise ConfigError(f"model.heads.{task}: unknown task; tasks: {', '.join(TASKS)}")
        name, config = block_name_and_config(block, f"model.heads.{task}")
        if task not in n_classes:
            raise ConfigError(f"model.heads.{task}: the data gives no {task} class count (n_classes has "
                              f"{', '.join(n_classes) or 'nothing'})")
        stated = config.get("n_classes")
        if stated is not None and stated != n_classes[task]:
            raise ConfigError(
                f"model.heads.{task}.n_classes is {stated} but the data has {n_classes[task]} {task} classes"
            )
        heads[task] = component("head", name)(
            config,
            task=task,
            n_classes=int(n_classes[task]),
            in_channels=encoder.out_channels,
            in_features=encoder.out_features,
            time_stride=getattr(encoder, "time_stride", 1),
        )
    return JointModel(encoder, heads)
