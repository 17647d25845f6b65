"""jasc core: the plugin contract, registry, recipes, training engine, evaluation and CLI.

The public names plugin authors use are exported here (import them from ``jasc_core``, not from submodules); see
``jasc_core.contract.hookspecs`` for the hooks, ``jasc_core.contract.components``, ``.weighting`` and ``.schedule``
for the component kinds and ``jasc_core.contract.tasks`` for the task descriptions.

Layers, each importing only the ones before it (``tests/test_core_layers.py`` checks; docs/architecture.md draws
them): ``contract`` (component kinds, hooks, task descriptions, the batch, registry), ``recipes`` (loading and
validation), ``runs`` (run folders, checkpoints, atomic files), ``data`` (clip datasets, batches, loaders, audio
caches), ``model`` (the trained pipeline, devices and precision, dry runs, complexity), ``inference`` (scoring clips,
files of any length, post-processing, outputs, ONNX), ``evaluation`` (metrics, tables, plots, threshold tuning of
runs), ``training`` (runtime, streams, phases, the loop, the run flow), ``sweeps`` (``jasc sweep``, ``jasc tune``,
their launchers), ``cli``.
"""

from __future__ import annotations

from importlib import import_module, metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names below are imported on first use (see __getattr__)
    from jasc_core.contract.batch import Batch
    from jasc_core.contract.class_masks import (
        LabelledTargets,
        broadcast_class_mask,
        class_masks_of,
        masked_bce_with_logits,
    )
    from jasc_core.contract.components import (
        Augmentation,
        Component,
        Dataset,
        Encoder,
        FeatureExtractor,
        Head,
        ThresholdOptimizer,
    )
    from jasc_core.contract.context import EpochContext, SetupContext, StepContext, StreamInfo
    from jasc_core.contract.data import Clip, ClipList, Event
    from jasc_core.contract.hookspecs import hookimpl
    from jasc_core.contract.logger import Logger
    from jasc_core.contract.registry import component, components
    from jasc_core.contract.schedule import Phase, Schedule, StepPlan, by_clip_length, streams_with
    from jasc_core.contract.tasks import TASK_DESCRIPTIONS, TASKS, TaskDescription, labelled_tasks
    from jasc_core.contract.weighting import Weighting
    from jasc_core.errors import ConfigError, DataError, JascError, PluginError, RunError

try:
    __version__ = metadata.version("jasc")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Where each public name lives. They are imported on first use (PEP 562), so that importing a torch-free part of the
#: core (``jasc_core.errors``, the ONNX predictor of ``jasc predict --onnx``) does not import torch through this file.
_PUBLIC = {
    **dict.fromkeys(("Augmentation", "Component", "Dataset", "Encoder", "FeatureExtractor", "Head", "ThresholdOptimizer"),
                    "jasc_core.contract.components"),
    "Batch": "jasc_core.contract.batch",
    **dict.fromkeys(("EpochContext", "SetupContext", "StepContext", "StreamInfo"), "jasc_core.contract.context"),
    **dict.fromkeys(("Clip", "ClipList", "Event"), "jasc_core.contract.data"),
    "hookimpl": "jasc_core.contract.hookspecs",
    "Logger": "jasc_core.contract.logger",
    **dict.fromkeys(("component", "components"), "jasc_core.contract.registry"),
    **dict.fromkeys(("Phase", "Schedule", "StepPlan", "by_clip_length", "streams_with"), "jasc_core.contract.schedule"),
    **dict.fromkeys(("TASK_DESCRIPTIONS", "TASKS", "TaskDescription", "labelled_tasks"), "jasc_core.contract.tasks"),
    **dict.fromkeys(("LabelledTargets", "class_masks_of", "broadcast_class_mask", "masked_bce_with_logits"),
                    "jasc_core.contract.class_masks"),
    "Weighting": "jasc_core.contract.weighting",
    **dict.fromkeys(("ConfigError", "DataError", "JascError", "PluginError", "RunError"), "jasc_core.errors"),
}


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'jasc_core' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


__all__ = [
    "Augmentation",
    "Batch",
    "TASKS",
    "TASK_DESCRIPTIONS",
    "EpochContext",
    "Logger",
    "Phase",
    "SetupContext",
    "StepContext",
    "StepPlan",
    "StreamInfo",
    "TaskDescription",
    "by_clip_length",
    "streams_with",
    "Clip",
    "ClipList",
    "Component",
    "ConfigError",
    "DataError",
    "Dataset",
    "Encoder",
    "Event",
    "FeatureExtractor",
    "Head",
    "JascError",
    "PluginError",
    "RunError",
    "Schedule",
    "ThresholdOptimizer",
    "Weighting",
    "__version__",
    "component",
    "components",
    "hookimpl",
    "labelled_tasks",
    "LabelledTargets",
    "class_masks_of",
    "broadcast_class_mask",
    "masked_bce_with_logits",
]
