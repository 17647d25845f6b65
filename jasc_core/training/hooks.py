"""The run-lifecycle hooks as a run calls them: through pluggy, each plugin's failure reported once and switched off
(``jasc_core.contract.observers`` says how)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pluggy

from jasc_core.console import output_console
from jasc_core.contract.json_types import JSONMapping
from jasc_core.contract.observers import ObserverFailures


def _warn_on_stderr(message: str) -> None:
    output_console(stderr=True, highlight=False).print(message, markup=False)


class RunHooks:
    """The run hooks of one run over a pluggy hook relay (``registry.hook``)."""

    def __init__(self, relay: pluggy.HookRelay, warn: Callable[[str], None] = _warn_on_stderr) -> None:
        self._relay = relay
        self._failures = ObserverFailures(warn)

    @property
    def failed(self) -> dict[str, str]:
        """Plugins switched off in this run -> the failure that switched them off."""
        return self._failures.failed

    def jasc_run_start(self, *, run_dir: str, recipe: JSONMapping) -> None:
        with self._failures.active():
            self._relay.jasc_run_start(run_dir=run_dir, recipe=recipe)

    def jasc_epoch_end(self, *, run_dir: str, epoch: int, metrics: Mapping[str, float]) -> None:
        with self._failures.active():
            self._relay.jasc_epoch_end(run_dir=run_dir, epoch=epoch, metrics=metrics)

    def jasc_run_end(self, *, run_dir: str, metrics: Mapping[str, float]) -> None:
        with self._failures.active():
            self._relay.jasc_run_end(run_dir=run_dir, metrics=metrics)
