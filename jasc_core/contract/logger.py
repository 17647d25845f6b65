"""The ``Logger`` component kind: a logger a recipe's ``log`` list names, with options validated like any block's.

A recipe asks for loggers by name, with options or without::

    log: [{name: tensorboard, flush_secs: 30}, {name: mlflow, experiment: dcase, dir: /data/mlruns}]
    log: [tensorboard, mlflow]          # the bare names: every option at its default

Each entry is validated against the logger's ``Config`` (a subclass of ``Logger.Config``, which gives every logger
``dir``): an unknown option or a bad value is a recipe error naming ``log.<i>.<field>``, before any training. A plugin
registers its ``Logger`` subclass with ``jasc_register_components`` as any component, so ``jasc list-plugins`` lists
it with the plugin it came from and ``jasc show logger <name>`` shows its options.

What a logger does happens in the run hooks (``jasc_run_start``, ``jasc_epoch_end``, ``jasc_run_end``; see
``jasc_core.contract.hookspecs``), in the same plugin: ``jasc_run_start`` gets the resolved recipe and
``MyLogger.options(recipe)`` returns the validated options of the run's entry for that logger (every default filled
in), or None when the run does not ask for it. A logger that raises is switched off for the run, the run goes on
(``jasc_core.contract.observers``).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from jasc_core.contract.components import Component


class Logger(Component):
    """A logger that follows a run; ``Config`` holds its options (``log: [{name: <name>, <option>: ...}]``)."""

    kind = "logger"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        dir: str | None = Field(
            None, description="where the logger writes (relative to the working directory); default: a folder "
            "inside the run folder")

    @classmethod
    def options(cls, recipe: Mapping[str, object]) -> tuple[int, BaseModel] | None:
        """``(i, options)`` for the resolved recipe's ``log[i]`` entry that names this logger, or None.

        ``recipe`` is the plain data the run hooks get; the entry was validated when the recipe loaded, so this
        only turns it back into ``cls.Config``.
        """
        entries = recipe.get("log") or ()
        if not isinstance(entries, (list, tuple)):
            return None
        for index, entry in enumerate(entries):
            if isinstance(entry, Mapping) and entry.get("name") == cls.name:
                return index, cls.validate_config(entry)
        return None
