"""Every hook a jasc plugin can implement. This module is the reference for plugin authors.

A plugin is a plain module (or package) listed under ``[project.entry-points.jasc]`` in its ``pyproject.toml``. It
implements any of the hooks below with functions decorated by ``jasc_core.hookimpl``; pluggy lets an implementation
take fewer arguments than the spec, so hooks can gain arguments without breaking existing plugins. Built-in plugins
are loaded through the same entry points as third-party ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

PROJECT = "jasc"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def jasc_register_components(register: Callable[[type], None]) -> None:
    """Register component classes: call ``register(cls)`` once per class.

    The class derives from one kind's base class (``FeatureExtractor``, ``Encoder``, ``Head``, ``Weighting``,
    ``Schedule``, ``Dataset``, ``ThresholdOptimizer``), has a ``name`` unique within its kind and a nested pydantic
    ``Config``. Registering a ``(kind, name)`` another plugin already registered is an error naming both plugins.
    """


@hookspec
def jasc_register_commands(app: Any) -> None:
    """Add command-line commands: ``app`` is the root ``typer.Typer``; call ``app.add_typer(sub, name=...)``."""


@hookspec
def jasc_run_start(run_dir: str, recipe: Mapping[str, Any]) -> None:
    """A run is about to train. ``recipe`` is the fully resolved recipe (plain data)."""


@hookspec
def jasc_epoch_end(run_dir: str, epoch: int, metrics: Mapping[str, float]) -> None:
    """An epoch finished; ``metrics`` holds its training losses, weights and validation metrics."""


@hookspec
def jasc_run_end(run_dir: str, metrics: Mapping[str, float]) -> None:
    """A run finished; ``metrics`` holds the final evaluation metrics."""
