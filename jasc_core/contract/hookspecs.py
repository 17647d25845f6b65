"""Every hook a jasc plugin can implement. This module is the reference for plugin authors.

A plugin is a plain module (or package) listed under ``[project.entry-points.jasc]`` in its ``pyproject.toml``. It
implements any of the hooks below with functions decorated by ``jasc_core.hookimpl``; pluggy lets an implementation
take fewer arguments than the spec, so hooks can gain arguments without breaking existing plugins. Built-in plugins
are loaded through the same entry points as third-party ones.

When each hook is called:

1. **Start-up** (every ``jasc`` command, every ``jasc_core.component`` lookup): ``jasc_register_components`` once
   per plugin, in entry-point order; then ``jasc_register_commands`` when the command line is built.
2. **Loading a recipe** (``jasc validate``, ``jasc run``, every ``load_recipe``), after the recipe validated:
   ``jasc_check_recipe`` (loggers are components of kind ``logger``, ``jasc_core.contract.logger``; their names
   and options are validated with the recipe's other blocks).
3. **A run** (``jasc run``, ``jasc sweep`` for each of its runs), on the process that writes the run folder:
   ``jasc_run_start`` once after everything is built (also after ``--resume``), ``jasc_epoch_end`` after every
   epoch's checkpoint is written, ``jasc_run_end`` once after the final evaluation. These three serve observers
   (loggers): an implementation that raises is reported once on stderr and its plugin's run hooks are not called
   again in that run (the run goes on; ``run.json`` records it under ``hook_failures``).

Every hook is called through pluggy (``plugin_manager.hook.<name>(...)``; the start-up hooks once per plugin through
a pluggy caller of that plugin alone), so ``@hookimpl(tryfirst=True)``, ``trylast``, ``wrapper=True`` and the
rest of pluggy's rules apply as in pytest. A hook wrapper that raises stops the call, failures of plain run-hook
implementations do not (``jasc_core.contract.observers``).

The component methods the loop calls (weighting schemes, schedules) are documented on their base classes in
``jasc_core.contract.weighting`` and ``jasc_core.contract.schedule``, with the call order; docs/plugins.md has
the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from jasc_core.contract.json_types import JSONMapping

PROJECT = "jasc"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- start-up ----------------------------------------------------------------------------------------------------


@hookspec
def jasc_register_components(register: Callable[[type], None]) -> None:
    """Register component classes: call ``register(cls)`` once per class.

    The class derives from one kind's base class (``FeatureExtractor``, ``Encoder``, ``Head``, ``Weighting``,
    ``Schedule``, ``Dataset``, ``ThresholdOptimizer``, ``Logger``), has a ``name`` unique within its kind and a
    nested pydantic ``Config``. Registering a ``(kind, name)`` another plugin already registered is an error naming both plugins.

    A ``TaskDescription`` subclass (``jasc_core.TaskDescription``: a third task such as clip-level tagging) is
    registered the same way: its ``name`` joins ``TASK_DESCRIPTIONS`` and becomes a key of ``model.heads``;
    predicting, exporting and ONNX prediction then follow its ``output_kind`` (``jasc_core.contract.task_outputs``).
    A task name that is already known is an error.
    """


@hookspec
def jasc_register_commands(app: typer.Typer) -> None:
    """Add command-line commands: ``app`` is the root ``typer.Typer``; call ``app.add_typer(sub, name=...)``."""


# -- loading a recipe ---------------------------------------------------------------------------------------------


@hookspec
def jasc_logger_names() -> list[str]:
    """Names of the loggers this plugin serves in a recipe's ``log`` list: the way of earlier releases, kept for
    their plugins. Register a ``jasc_core.Logger`` subclass instead (its ``Config`` holds the logger's options).

    Called once, when the plugin is loaded: each name becomes a ``logger`` component of this plugin whose options are
    those every logger has (``dir``). The plugin reads its entry of the resolved recipe's ``log`` list in
    ``jasc_run_start`` and stays inert for a run whose list does not name it.
    """


@hookspec
def jasc_check_recipe(recipe: JSONMapping) -> list[str]:
    """Problems with a validated recipe (plain data, every default filled in) that only this plugin can see, as
    ``"path: problem"`` lines (e.g. ``"log[0]: tensorboard needs ... pip install 'jasc[tensorboard]'"``); an empty
    list when there are none. Each line becomes part of the recipe's ``ConfigError`` (exit code 2)."""


# -- a run (called in this order) ---------------------------------------------------------------------------------


@hookspec
def jasc_run_start(run_dir: str, recipe: JSONMapping) -> None:
    """A run is about to train (or to continue, after ``--resume``).

    ``run_dir``: the run folder. ``recipe``: the fully resolved recipe as plain data (every default filled in).
    """


@hookspec
def jasc_epoch_end(run_dir: str, epoch: int, metrics: Mapping[str, float]) -> None:
    """An epoch finished and its checkpoint is on disk.

    ``epoch``: 1-based, as the console, ``history.json`` and ``run.json`` count. ``metrics``: flat numbers of the epoch: ``epoch``, ``lr``, ``train/loss/<task>``,
    ``train/extra/<name>`` (a schedule's extra losses), ``weight/<task>`` and the validation metrics ``val/...``.
    """


@hookspec
def jasc_run_end(run_dir: str, metrics: Mapping[str, float]) -> None:
    """A run finished training and evaluation; ``metrics`` holds the final evaluation metrics, flattened with
    ``/`` (``scene/accuracy``, ``event/segment_f1_micro``, ...)."""
