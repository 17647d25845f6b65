"""The run-lifecycle hooks as the loop calls them: a plugin that fails is reported once and switched off.

``jasc_run_start``, ``jasc_epoch_end`` and ``jasc_run_end`` serve observers (loggers); none of them can change what
is trained. So a logger that raises (a full disk, a closed connection, a bug) must not throw away the epochs trained
so far: ``RunHooks`` calls each plugin's implementation on its own, and the first exception prints one warning on
stderr and switches that plugin off for the rest of the run (its later run hooks are not called). Ctrl-C
(``KeyboardInterrupt``) still stops the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jasc_core.console import output_console


def _warn_on_stderr(message: str) -> None:
    output_console(stderr=True, highlight=False).print(message, markup=False)


class RunHooks:
    """The run hooks of a pluggy hook relay, called one implementation at a time, each guarded.

    Implementations are called in pluggy's order (last registered first). Hook wrappers are not supported on run
    hooks: one counts as a failure of its plugin.
    """

    def __init__(self, relay: Any, warn: Callable[[str], None] = _warn_on_stderr) -> None:
        self._relay, self._warn = relay, warn
        #: Plugins switched off in this run -> the failure that switched them off.
        self.failed: dict[str, str] = {}

    def _call(self, hook_name: str, **kwargs: Any) -> None:
        for impl in reversed(getattr(self._relay, hook_name).get_hookimpls()):
            plugin = impl.plugin_name
            if plugin in self.failed:
                continue
            try:
                if impl.hookwrapper or getattr(impl, "wrapper", False):
                    raise TypeError("hook wrappers are not supported on run hooks")
                impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
            except Exception as exc:  # any failure of an observer: report it, keep training
                self.failed[plugin] = f"{hook_name}: {type(exc).__name__}: {exc}"
                self._warn(f"warning: plugin '{plugin}' failed in {hook_name} ({type(exc).__name__}: {exc}); "
                           f"it is switched off for the rest of this run, training goes on")

    def jasc_run_start(self, **kwargs: Any) -> None:
        self._call("jasc_run_start", **kwargs)

    def jasc_epoch_end(self, **kwargs: Any) -> None:
        self._call("jasc_epoch_end", **kwargs)

    def jasc_run_end(self, **kwargs: Any) -> None:
        self._call("jasc_run_end", **kwargs)
