"""The trained pipeline: feature extractor + joint model (one shared encoder, one head per task), built from a recipe.

A model is an encoder plus any non-empty subset of task heads: encoder + scene head is a single-task ASC model,
encoder + event head a single-task SED model (001 Table IV's CNN and CNN-BiGRU rows), both heads the MTL model.

    model:
      encoder: {name: tonami_cnn}
      heads: {scene: {name: tonami_scene}, event: {name: bigru}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from jasc_core.contract.components import Encoder, FeatureExtractor, Head
from jasc_core.contract.registry import component
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.errors import ConfigError
from jasc_core.recipes.model import block_name_and_config, build
from jasc_core.recipes.types import Recipe


class JointModel(nn.Module):
    """Shared encoder + ``nn.ModuleDict`` of heads keyed by task; ``forward`` returns logits by output name.

    ``parameter_groups()`` names the parts a schedule can train or freeze: ``encoder`` and ``heads.<task>``.
    """

    def __init__(self, encoder: Encoder, heads: Mapping[str, Head]) -> None:
        super().__init__()
        if not heads:  # recipes are checked on load; this guards Python callers that build a model directly
            raise ConfigError("model.heads: a model needs at least one head")
        for task, head in heads.items():
            if getattr(head, "task", task) != task:
                raise ConfigError(f"model.heads.{task}: head '{head.name}' was built for task '{head.task}'")
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads))

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def parameter_groups(self) -> dict[str, nn.Module]:
        """The named parts of the model: ``encoder`` and ``heads.<task>`` per head."""
        return {"encoder": self.encoder, **{f"heads.{task}": head for task, head in self.heads.items()}}

    def forward(self, features: Tensor, class_masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Features ``[B, T, F]`` -> logits by output name (see ``jasc_core.contract.tasks``).

        A head with its own clip-level output returns ``{"frame": ..., "clip": ...}``: the frame output comes at the
        features' frame rate under the task's name, the clip output as ``<task>/clip``. ``class_masks`` (``[B, M]``
        bool per task, training only) reach the heads that declare ``uses_class_mask``.
        """
        feature_map = self.encoder(features)
        outputs: dict[str, Tensor] = {}
        for task, head in self.heads.items():
            mask = (class_masks or {}).get(task)
            output = head(feature_map, class_mask=mask) if mask is not None and head.uses_class_mask else head(feature_map)
            outputs.update(head_outputs(task, output, features.shape[1]))
        return outputs


def head_outputs(task: str, output: Tensor | Mapping[str, Tensor], n_frames: int) -> dict[str, Tensor]:
    """What one head returned, as outputs by name: a ``{"frame", "clip"}`` pair becomes ``<task>`` and
    ``<task>/clip``; a frame-level output comes at the features' ``n_frames``."""
    outputs: dict[str, Tensor] = {}
    if isinstance(output, Mapping):
        outputs[f"{task}/clip"] = output["clip"]
        output = output["frame"]
    outputs[task] = match_frames(output, n_frames) if TASK_DESCRIPTIONS[task].frame_level else output
    return outputs


def check_classes(where: str, got: int, expected: int, source: str) -> None:
    """A head's class count against the one its labels need (``source`` says where that number comes from)."""
    if got != expected:
        raise ConfigError(f"{where}: outputs {got} classes, expected {expected} ({source})")


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


def _field(block: BaseModel | Mapping[str, object], key: str) -> object:
    return getattr(block, key, None) if isinstance(block, BaseModel) else block.get(key)


def build_model(
    model_block: BaseModel | Mapping[str, object], n_features: int, n_classes: Mapping[str, int]
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

    name, config = block_name_and_config(encoder_block, "model.encoder")
    encoder = component("encoder", name)(config, n_features=n_features)

    heads: dict[str, Head] = {}
    for task, block in heads_block.items():
        if task not in TASK_DESCRIPTIONS:  # a recipe cannot name one; a dict from Python can
            raise ConfigError(f"model.heads.{task}: unknown task; tasks: {', '.join(TASK_DESCRIPTIONS)}")
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


class Labels(dict):
    """The label vocabularies a model was trained with, keyed by task (stored in every checkpoint)."""

    def n_classes(self, tasks: Sequence[str]) -> dict[str, int]:
        return {task: len(self[task]) for task in tasks}

    def as_dict(self) -> dict[str, list[str]]:
        return {task: list(values) for task, values in self.items()}


class Pipeline(nn.Module):
    """Feature extractor + joint model: waveforms ``[B, S]`` -> logits by output name; saved and loaded as one."""

    def __init__(self, features: FeatureExtractor, model: JointModel) -> None:
        super().__init__()
        self.features = features
        self.model = model

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.model.tasks

    def stand_in(self, data_stand_in: str | None = None) -> str | None:
        """The run's stand-in phrase: the dataset's joined with those of modules that stand in for something real
        (a module's ``stand_in`` string attribute, e.g. a pretrained encoder left at random weights); None if none."""
        phrases = [data_stand_in] + [getattr(module, "stand_in", None) for module in self.modules()]
        return "; ".join(p for p in phrases if isinstance(p, str) and p) or None

    def forward(self, waveform: Tensor, with_features: bool = False, augment: Callable[[Tensor], Tensor] | None = None,
                class_masks: Mapping[str, Tensor] | None = None
                ) -> dict[str, Tensor] | tuple[Tensor, dict[str, Tensor]]:
        """Logits by output name; with ``with_features``, ``(features, outputs)`` (schedules' extra losses).

        ``augment`` (training only) maps the features before the model sees them; ``class_masks`` go to the heads
        (``JointModel.forward``).
        """
        # Features in fp32 even under bf16 autocast: the log of a bf16 mel power keeps 2-3 significant digits.
        with torch.autocast(waveform.device.type, enabled=False):
            features = self.features(waveform.float())
        if augment is not None:
            features = augment(features)
        outputs = self.model(features, class_masks) if class_masks else self.model(features)
        return (features, outputs) if with_features else outputs


def build_pipeline(recipe: Recipe, labels: Labels, tasks: Sequence[str]) -> Pipeline:
    """Features + model of a recipe, sized for ``labels``; checks the heads' output sizes with a dry run."""
    features = build("features", recipe.features)
    model = build_model(recipe.model, n_features=features.n_features, n_classes=labels.n_classes(tasks))
    pipeline = Pipeline(features, model)
    check_head_sizes(pipeline, labels, tasks)
    return pipeline


def check_head_sizes(pipeline: Pipeline, labels: Labels, tasks: Sequence[str]) -> None:
    """A forward pass on one second of silence (eval mode: no statistics updated, no RNG drawn)."""
    was_training = pipeline.training
    pipeline.eval()
    try:
        with torch.no_grad():
            outputs = pipeline(torch.zeros(1, int(pipeline.features.sample_rate)))
    finally:
        pipeline.train(was_training)
    for task, expected in labels.n_classes(tasks).items():
        head = pipeline.model.heads[task]
        check_classes(f"model.heads.{task} ({head.name})", int(outputs[task].shape[-1]), expected,
                      f"the data has {expected} {task} labels")
