"""The component kinds: one abstract base class per kind (the public plugin contract).

A component is a class with a registry key ``name`` and a nested pydantic ``Config`` that is the schema of its
recipe block. The kind of a component is the base class it derives from. The base constructor validates the recipe
block (without its ``name`` key) into ``self.config``; missing fields take the ``Config`` defaults and unknown keys
are an error, whether or not the plugin author remembered to say ``extra="forbid"``.

    component("weighting", "mfl")({"gamma": 2.0})

Kinds that are ``torch.nn.Module`` s (features, encoders, heads) also take keyword arguments that only the model
builder knows (sizes of the data and of the previous stage); they are listed on each base class. Tasks travel as
dicts keyed by task name: ``"scene"`` (logits ``[B, N]``, targets class indices ``[B]``) and ``"event"`` (frame
logits ``[B, T, M]``, targets ``{0, 1}`` ``[B, T, M]``). A batch may lack a task's labels; that task is then absent
from the dicts, never zero-filled.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Iterable, Mapping
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from jasc_core.contract.batch import Batch
from jasc_core.contract.config_errors import format_validation_error
from jasc_core.contract.tasks import TASKS
from jasc_core.errors import ConfigError


class Component(metaclass=ABCMeta):  # noqa: B024 - each kind declares its abstract methods
    """Base of every component kind: a registry key, a config schema and a validated ``self.config``."""

    #: Kind key used by ``jasc_core.component(kind, name)``; set once on each kind's base class.
    kind: ClassVar[str] = ""
    #: Registry key, unique within its kind; set by each concrete component.
    name: ClassVar[str] = ""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    #: Keyword arguments the conformance kit passes when it builds an instance of this kind (see ``jasc_core.testing``).
    conformance_kwargs: ClassVar[dict[str, object]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        config = cls.__dict__.get("Config")
        if config is not None and config.model_config.get("extra") != "forbid":
            # Authors write a plain BaseModel; the contract promises extra keys are rejected, so enforce it here
            # with a subclass that keeps the author's name, fields and docstring.
            cls.Config = type(
                config.__name__,
                (config,),
                {"model_config": ConfigDict(extra="forbid"), "__doc__": config.__doc__,
                 "__module__": config.__module__, "__qualname__": config.__qualname__},
            )

    def __init__(self, config: Mapping[str, object] | BaseModel | None = None) -> None:
        self.config = self.validate_config(config)

    @classmethod
    def validate_config(cls, config: Mapping[str, object] | BaseModel | None) -> BaseModel:
        """Validate a recipe block (without ``name``) into an instance of ``cls.Config``."""
        if isinstance(config, cls.Config):
            return config
        if isinstance(config, BaseModel):
            config = config.model_dump()
        block = dict(config or {})
        block.pop("name", None)
        try:
            return cls.Config.model_validate(block)
        except Exception as exc:  # pydantic.ValidationError; re-raised with the component named
            raise ConfigError(
                format_validation_error(exc, prefix=cls.kind or "component", model=cls.Config, component=cls)
            ) from None

    @classmethod
    def check_recipe(cls, block: BaseModel, recipe: BaseModel) -> list[str]:
        """Problems with this component's place in a whole recipe (e.g. a weighting that needs per-task gradients
        paired with a schedule that cannot give them). Each problem is one line; the recipe loader prefixes the
        block's path. Default: none."""
        return []

    @classmethod
    def description(cls) -> str:
        """The first line of the class docstring: the one-line summary listings show."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""


class _ModuleComponent(Component, nn.Module):
    """A component that is also an ``nn.Module``: ``nn.Module.__init__`` runs before the config is validated."""

    def __init__(self, config: Mapping[str, object] | BaseModel | None = None) -> None:
        nn.Module.__init__(self)
        Component.__init__(self, config)


class FeatureExtractor(_ModuleComponent):
    """Waveforms ``[B, samples]`` at ``sample_rate`` -> features ``[B, frames, n_features]`` on the training device.

    Concrete extractors set ``self.sample_rate`` (Hz), ``self.hop_seconds`` (frame hop) and ``self.n_features`` in
    their constructor. Normalisation statistics computed on the training split live in the module's buffers, so they
    are saved with the model: ``fit_normalization`` is called by the engine before training.
    """

    kind = "features"
    sample_rate: int
    hop_seconds: float
    n_features: int

    @abstractmethod
    def forward(self, waveform: Tensor) -> Tensor:
        """Waveforms ``[B, samples]`` -> features ``[B, frames, n_features]``."""

    @abstractmethod
    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""

    def fit_normalization(self, batches: Iterable[Tensor]) -> None:
        """Compute per-feature statistics from waveform batches of the training split (default: no normalisation)."""


class Encoder(_ModuleComponent):
    """The shared network: features ``[B, T, F]`` -> feature map ``[B, C, T', F']``.

    Built with ``n_features`` (F of its input). After construction it sets ``self.out_channels`` (C),
    ``self.out_features`` (F') and ``self.time_stride`` (T / T', 1 when time is not pooled).
    """

    kind = "encoder"
    conformance_kwargs = {"n_features": 64}
    out_channels: int
    out_features: int
    time_stride: int = 1

    def __init__(self, config: Mapping[str, object] | BaseModel | None = None, *, n_features: int = 64) -> None:
        super().__init__(config)
        self.n_features = n_features

    @abstractmethod
    def forward(self, features: Tensor) -> Tensor:
        """Features ``[B, T, F]`` -> feature map ``[B, C, T', F']``."""


class Head(_ModuleComponent):
    """A task head: feature map ``[B, C, T', F']`` -> task logits.

    ``tasks`` names the tasks it can serve. Built with ``task``, ``n_classes`` and the encoder's ``in_channels``,
    ``in_features`` and ``time_stride``. A scene head returns ``[B, N]``; an event head returns ``[B, T, M]`` at the
    frame rate of the features (it undoes the encoder's ``time_stride``).
    """

    kind = "head"
    tasks: ClassVar[tuple[str, ...]] = TASKS
    #: True for a head whose ``forward(feature_map, class_mask=None)`` takes the ``[B, M]`` bool mask of the classes
    #: each clip's dataset annotates (DESED 2024's attention pooling leaves the others out); training passes it where
    #: a batch joins datasets with different classes, inference never does.
    uses_class_mask: ClassVar[bool] = False
    conformance_kwargs = {"task": "event", "n_classes": 3, "in_channels": 8, "in_features": 4, "time_stride": 1}

    def __init__(
        self,
        config: Mapping[str, object] | BaseModel | None = None,
        *,
        task: str,
        n_classes: int,
        in_channels: int,
        in_features: int,
        time_stride: int = 1,
    ) -> None:
        super().__init__(config)
        if task not in self.tasks:
            raise ConfigError(f"head '{self.name}' serves {', '.join(self.tasks)}, not '{task}'")
        self.task = task
        self.n_classes = n_classes
        self.in_channels = in_channels
        self.in_features = in_features
        self.time_stride = time_stride

    @abstractmethod
    def forward(self, feature_map: Tensor) -> Tensor | dict[str, Tensor]:
        """Feature map -> logits: ``[B, N]`` (scene), or ``[B, T, M]`` frame logits (event), or for an event head
        with its own clip-level output ``{"frame": [B, T, M], "clip": [B, M]}`` (logits: a head that pools
        probabilities returns ``torch.logit`` of them)."""


class Augmentation(_ModuleComponent):
    """Changes a training batch's features (and, for mixing methods, its targets); never runs in validation.

    ``forward(features, batch, generator)`` gets features ``[B, T, F]``, the ``Batch`` (``jasc_core.contract.batch``:
    ``targets`` and ``masks`` keyed by output name, ``n_classes`` by task) and the run's augmentation generator, and
    returns ``(features, batch)`` (``batch.replace(targets=..., masks=...)`` where targets change). Draw every random number from ``generator``: its state is saved in checkpoints, so a
    resumed run draws the same masks. A method that mixes clips must mix their targets and keep a target only where
    both clips have it (mask ``m & m[perm]``); scene targets may become class probabilities ``[B, N]``.
    """

    kind = "augment"
    #: True for a method that changes what the clip sounds like in a way its targets do not follow (a waveform-level
    #: device impulse response, pitch shift): teachers' outputs cached per clip would then be wrong, so distillation
    #: computes them online. Feature-level methods whose targets follow (mixup mixes them) or that keep the clip's
    #: content (masking, Freq-MixStyle) leave it False.
    changes_clip_audio: ClassVar[bool] = False

    @abstractmethod
    def forward(self, features: Tensor, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Batch]:
        """Augmented features and the batch whose targets go with them."""


class Dataset(Component):
    """A source of labelled clips: splits of ``jasc_core.contract.data.Clip`` plus the audio behind them.

    ``prepare`` makes the data available (generate, check a root folder) and may be slow; ``load(split)`` returns a
    ``jasc_core.contract.data.ClipList``; ``audio(clip, sample_rate)`` returns the clip's mono waveform, float32, exactly
    ``round(clip.duration * sample_rate)`` samples (zero-padded at the end of a recording).
    """

    kind = "dataset"

    def prepare(self) -> None:
        """Make the data available; called once before ``load``."""

    #: Set by ``prepare`` when the dataset serves a stand-in (e.g. synthetic audio because the real data is missing):
    #: a short phrase that the run folder, tables and plots repeat wherever they name the data. None for real data.
    stand_in: str | None = None

    @abstractmethod
    def splits(self) -> list[str]:
        """The split names this dataset has."""

    @abstractmethod
    def load(self, split: str):  # -> jasc_core.contract.data.ClipList
        """The clips of one split."""

    @abstractmethod
    def audio(self, clip, sample_rate: int):  # -> numpy.ndarray
        """The clip's mono float32 waveform at ``sample_rate``."""


class ThresholdOptimizer(Component):
    """Chooses per-class decision thresholds from scores and binary targets (detection is ``score > threshold``).

    ``fit(scores [n, classes], targets [n, classes])`` returns thresholds ``[classes]`` (numpy float arrays). Frame or
    segment scores are flattened to rows by the caller.
    """

    kind = "thresholds"

    @abstractmethod
    def fit(self, scores, targets):
        """Per-class thresholds from scores and binary targets."""




def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")
