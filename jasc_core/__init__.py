"""jasc core: the plugin contract, registry, recipes, training engine, evaluation and CLI.

The public names plugin authors use are exported here; see ``jasc_core.contract.hookspecs`` for the hooks and
``jasc_core.contract.components`` for the component kinds.
"""

from __future__ import annotations

from importlib import metadata

from jasc_core.contract.components import (
    TASKS,
    Component,
    Dataset,
    Encoder,
    FeatureExtractor,
    Head,
    Schedule,
    ThresholdOptimizer,
    Weighting,
)
from jasc_core.contract.data import Clip, ClipList, Event
from jasc_core.errors import ConfigError, DataError, JascError, PluginError, RunError
from jasc_core.contract.hookspecs import hookimpl
from jasc_core.contract.registry import component, components

try:
    __version__ = metadata.version("jasc")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "TASKS",
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
