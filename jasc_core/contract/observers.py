"""The run hooks as observers: pluggy calls them, and a plugin that fails in one is switched off, not the run.

``jasc_run_start``, ``jasc_epoch_end`` and ``jasc_run_end`` serve observers (loggers); none of them can change what
is trained, so a logger that raises (a full disk, a closed connection, a bug) must not throw away the epochs trained
so far. The hooks are called through pluggy (``plugin_manager.hook.jasc_epoch_end(...)``), so ``tryfirst`` /
``trylast``, hook wrappers and every other pluggy rule apply as pytest users expect. What makes a failure local is
a guard put around each plain (non-wrapper) implementation when its plugin is registered (``guard_observers``):
during a run (``ObserverFailures.active``) the first exception of a plugin is reported once and switches that
plugin's run hooks off for the rest of the run; outside a run the implementation is called as it is. Ctrl-C
(``KeyboardInterrupt``) still stops the run; a hook wrapper that raises stops it too (wrappers are for plugins that
mean to change how the hook runs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import pluggy

OBSERVER_HOOKS = ("jasc_run_start", "jasc_epoch_end", "jasc_run_end")


class ObserverFailures:
    """The plugins switched off in one run, and how each failure is reported."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        #: Plugin name -> the failure that switched it off.
        self.failed: dict[str, str] = {}

    def switch_off(self, plugin: str, hook_name: str, exc: Exception) -> None:
        self.failed[plugin] = f"{hook_name}: {type(exc).__name__}: {exc}"
        self.warn(f"warning: plugin '{plugin}' failed in {hook_name} ({type(exc).__name__}: {exc}); it is switched "
                  "off for the rest of this run, training goes on")

    @contextmanager
    def active(self) -> Iterator[None]:
        """Guarded implementations report to this record while the block runs."""
        token = _active.set(self)
        try:
            yield
        finally:
            _active.reset(token)


_active: ContextVar[ObserverFailures | None] = ContextVar("jasc_observer_failures", default=None)


def guard_observers(plugin_manager: pluggy.PluginManager, plugin_name: str) -> None:
    """Guard the plain run-hook implementations of the plugin registered as ``plugin_name``."""
    for hook_name in OBSERVER_HOOKS:
        for impl in getattr(plugin_manager.hook, hook_name).get_hookimpls():
            if impl.plugin_name == plugin_name and not (impl.hookwrapper or impl.wrapper):
                impl.function = _guarded(impl.function, plugin_name, hook_name)


def _guarded(function: Callable[..., object], plugin: str, hook_name: str) -> Callable[..., object]:
    @functools.wraps(function)
    def call(*args: object) -> object:  # pluggy passes the arguments the implementation names, by position
        failures = _active.get()
        if failures is None:
            return function(*args)
        if plugin in failures.failed:
            return None
        try:
            return function(*args)
        except Exception as exc:  # any failure of an observer: report it, keep training
            failures.switch_off(plugin, hook_name, exc)
            return None

    return call
