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

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from jasc_core.errors import ConfigError

#: The tasks the toolkit knows. Heads are keyed by these in recipes and model outputs.
TASKS: tuple[str, ...] = ("scene", "event")


class Component:
    """Base of every component kind: a registry key, a config schema and a validated ``self.config``."""

    #: Kind key used by ``jasc_core.component(kind, name)``; set once on each kind's base class.
    kind: ClassVar[str] = ""
    #: Registry key, unique within its kind; set by each concrete component.
    name: ClassVar[str] = ""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    #: Keyword arguments the conformance kit passes when it builds an instance of this kind (see ``jasc_core.testing``).
    conformance_kwargs: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
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

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
        self.config = self.validate_config(config)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any] | BaseModel | None) -> BaseModel:
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
            from jasc_core.recipes.errors import format_validation_error

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

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None) -> None:
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

    def forward(self, waveform: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""
        raise NotImplementedError

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

    def __init__(self, config: Mapping[str, Any] | BaseModel | None = None, *, n_features: int = 64) -> None:
        super().__init__(config)
        self.n_features = n_features

    def forward(self, features: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Head(_ModuleComponent):
    """A task head: feature map ``[B, C, T', F']`` -> task logits.

    ``tasks`` names the tasks it can serve. Built with ``task``, ``n_classes`` and the encoder's ``in_channels``,
    ``in_features`` and ``time_stride``. A scene head returns ``[B, N]``; an event head returns ``[B, T, M]`` at the
    frame rate of the features (it undoes the encoder's ``time_stride``).
    """

    kind = "head"
    tasks: ClassVar[tuple[str, ...]] = TASKS
    conformance_kwargs = {"task": "event", "n_classes": 3, "in_channels": 8, "in_features": 4, "time_stride": 1}

    def __init__(
        self,
        config: Mapping[str, Any] | BaseModel | None = None,
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

    def forward(self, feature_map: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Weighting(Component):
    """Turns per-task losses into the one loss the optimiser sees.

    ``task_losses`` computes unweighted losses per task present in the batch (default: cross-entropy for scene,
    binary cross-entropy on frames for event, reduced by the mean); ``combine`` mixes them. Schemes with state
    override ``on_epoch_end``; schemes with learnable parameters return them from ``parameters()`` (the engine gives
    them their own optimiser group, no weight decay); schemes that work on gradients set
    ``requires_task_gradients = True`` and implement ``combine_gradients``.
    """

    kind = "weighting"
    #: True for gradient-manipulating schemes (GradNorm, PCGrad): the engine then calls ``combine_gradients``.
    requires_task_gradients: ClassVar[bool] = False

    def task_losses(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        for task, target in targets.items():
            if task not in outputs:
                continue
            logits = outputs[task].float()
            if task == "scene":
                losses[task] = nn.functional.cross_entropy(logits, target.long())
            elif task == "event":
                losses[task] = nn.functional.binary_cross_entropy_with_logits(logits, target.float())
        return losses

    def combine(self, losses: Mapping[str, Tensor], context: Mapping[str, Any]) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def combine_gradients(
        self, grads: Mapping[str, list[Tensor]], losses: Mapping[str, Tensor], context: Mapping[str, Any]
    ) -> list[Tensor]:
        """Per-task gradients of the shared parameters -> the gradient to apply (gradient-based schemes only).

        ``grads[task]`` lists the gradients of that task's loss w.r.t. ``context["shared_parameters"]`` (the
        encoder), in that order; return one tensor per shared parameter. The heads' gradients come from
        ``combine(losses, context)``, so a head sees its own task's loss with the weight the scheme gives it.
        """
        raise NotImplementedError

    def on_epoch_end(self, context: Mapping[str, Any]) -> None:
        """Called after every training epoch with ``epoch`` and ``train_losses`` (epoch mean per task)."""

    def parameters(self) -> list[nn.Parameter]:
        """Learnable parameters of the scheme itself (e.g. uncertainty log-variances)."""
        return []

    def effective_weights(self) -> dict[str, float]:
        """The weight each task currently gets, for the run history and ``weights.png``."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (resume)."""


class Schedule(Component):
    """Plans training: which tasks each step trains, which parameters train when, and any extra losses.

    One engine loop serves every schedule. Per step the engine asks ``tasks_for_step`` which of the tasks labelled in
    the batch contribute a loss; at each epoch start ``on_epoch_start`` may freeze or unfreeze parameters;
    ``extra_losses`` adds terms such as a mean teacher's consistency loss; ``after_step`` updates such a teacher.
    """

    kind = "schedule"
    #: False for schedules whose steps train one task at a time (HardMTL-style alternation, FreezeMTL phases):
    #: gradient-balancing weightings (GradNorm, PCGrad) need every task in the same step and reject such schedules.
    trains_tasks_jointly: ClassVar[bool] = True

    def setup(self, model: nn.Module, context: Mapping[str, Any]) -> None:
        """Called once before training (e.g. to build an EMA teacher of ``model``)."""

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Called at the start of each epoch (0-based), e.g. to freeze the encoder."""

    def tasks_for_step(self, step: int, epoch: int, available: frozenset[str]) -> frozenset[str]:
        """The tasks whose losses this step uses, out of those with labels in the batch."""
        return available

    def extra_losses(
        self, model: nn.Module, features: Tensor, outputs: Mapping[str, Tensor], batch: Mapping[str, Any],
        context: Mapping[str, Any],
    ) -> dict[str, Tensor]:
        """Additional named loss terms added to the weighted loss (default: none)."""
        return {}

    def after_step(self, model: nn.Module, context: Mapping[str, Any]) -> None:
        """Called after each optimiser step."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (resume)."""


class Dataset(Component):
    """A source of labelled clips: splits of ``jasc_core.contract.data.Clip`` plus the audio behind them.

    ``prepare`` makes the data available (generate, check a root folder) and may be slow; ``load(split)`` returns a
    ``jasc_core.contract.data.ClipList``; ``audio(clip, sample_rate)`` returns the clip's mono waveform, float32, exactly
    ``round(clip.duration * sample_rate)`` samples (zero-padded at the end of a recording).
    """

    kind = "dataset"

    def prepare(self) -> None:
        """Make the data available; called once before ``load``."""

    def splits(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, split: str):  # -> jasc_core.contract.data.ClipList
        raise NotImplementedError

    def audio(self, clip, sample_rate: int):  # -> numpy.ndarray
        raise NotImplementedError


class ThresholdOptimizer(Component):
    """Chooses per-class decision thresholds from scores and binary targets (detection is ``score > threshold``).

    ``fit(scores [n, classes], targets [n, classes])`` returns thresholds ``[classes]`` (numpy float arrays). Frame or
    segment scores are flattened to rows by the caller.
    """

    kind = "thresholds"

    def fit(self, scores, targets):  # pragma: no cover - abstract
        raise NotImplementedError


#: Every kind the core knows, in the order listings show them.
KINDS: dict[str, type[Component]] = {
    base.kind: base
    for base in (FeatureExtractor, Encoder, Head, Weighting, Schedule, Dataset, ThresholdOptimizer)
}


def kind_of(cls: type) -> str:
    """The kind key of a component class (the kind base class it derives from)."""
    for kind, base in KINDS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise ConfigError(f"{cls!r} is not a jasc component: derive it from one of {', '.join(b.__name__ for b in KINDS.values())}")


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")
