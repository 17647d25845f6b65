"""jasc core: the plugin contract, registry, recipes, training engine, evaluation and CLI.

The public names plugin authors use are exported here (import them from ``jasc_core``, not from submodules); see
``jasc_core.contract.hookspecs`` for the hooks, ``jasc_core.contract.components``, ``.weighting`` and ``.schedule``
for the component kinds and ``jasc_core.contract.tasks`` for the task descriptions.

Layers, each importing only the ones before it: ``contract`` (component kinds, hooks, task descriptions, registry),
``recipes`` (loading and validation), ``inference`` (the trained pipeline, run folders, scoring clips, audio),
``evaluation`` (metrics, tables, plots, threshold tuning of runs), ``training`` (runtime, streams, phases, the loop,
the run flow, sweeps), ``cli``.
"""

from __future__ import annotations

from importlib import metadata

from jasc_core.contract.components import (
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
from jasc_core.contract.registry import component, components
from jasc_core.contract.schedule import Phase, Schedule, StepPlan, by_clip_length, streams_with
from jasc_core.contract.tasks import TASK_DESCRIPTIONS, TASKS, TaskDescription
from jasc_core.contract.weighting import Weighting
from jasc_core.errors import ConfigError, DataError, JascError, PluginError, RunError

try:
    __version__ = metadata.version("jasc")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "TASKS",
    "TASK_DESCRIPTIONS",
    "EpochContext",
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
]
