"""Plugin discovery and the component registry.

Plugins are found through the ``jasc`` entry-point group (built-ins and third-party alike) and loaded with pluggy.
A plugin whose import raises is kept in the listing as ``broken`` with its error and discovery goes on; a plugin
named in ``JASC_DISABLE_PLUGINS`` (comma-separated entry-point names) is listed as ``blocked`` and never imported.
Each plugin's ``jasc_register_components`` is called with a ``register`` callback bound to that plugin, so every
component knows where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING

import pluggy

from jasc_core.contract import hookspecs
from jasc_core.contract.components import Component
from jasc_core.contract.config_errors import did_you_mean
from jasc_core.contract.kinds import KINDS, kind_of
from jasc_core.contract.logger import Logger
from jasc_core.contract.observers import guard_observers
from jasc_core.contract.tasks import TASK_DESCRIPTIONS, TaskDescription, install_tasks
from jasc_core.errors import PluginError

if TYPE_CHECKING:
    import typer

ENTRY_POINT_GROUP = "jasc"
DISABLE_ENV = "JASC_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    """One plugin as discovered: where it came from and whether it loaded."""

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    status: str = "ok"  # ok | broken | blocked
    error: str = ""


@dataclass
class ComponentInfo:
    """One registered component and the plugin that registered it."""

    kind: str
    name: str
    cls: type[Component]
    plugin: PluginInfo
    conflicts: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return self.cls.description()

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin.name,
            "distribution": self.plugin.distribution,
            "version": self.plugin.version,
            "description": self.description,
            "status": "broken" if self.conflicts else self.plugin.status,
            "error": self.conflict_message() if self.conflicts else self.plugin.error,
        }

    def conflict_message(self) -> str:
        owners = " and ".join(f"'{p}'" for p in [self.plugin.name, *self.conflicts])
        return f"{self.kind} '{self.name}' is registered by more than one plugin: {owners}"


def disabled_plugins() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


class Registry:
    """Plugins and their components. Use ``get_registry()`` for the process-wide one."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._components: dict[tuple[str, str], ComponentInfo] = {}
        #: Task descriptions plugins registered (``register(MyTask)``); installed in ``TASK_DESCRIPTIONS`` while
        #: this is the process-wide registry.
        self.tasks: dict[str, TaskDescription] = {}

    # -- discovery ---------------------------------------------------------------------------------------------

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        blocked = disabled_plugins()
        for entry_point in sorted(metadata.entry_points(group=group), key=lambda ep: ep.name):
            dist = getattr(entry_point, "dist", None)
            info = PluginInfo(
                name=entry_point.name,
                module=entry_point.value,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
            )
            if entry_point.name in self.plugins:
                continue  # the same distribution seen twice on sys.path
            if entry_point.name in blocked:
                info.status = "blocked"
                info.error = f"blocked by {DISABLE_ENV}"
                self.plugins[info.name] = info
                continue
            try:
                module = entry_point.load()
            except Exception as exc:  # any import-time failure: keep discovering, report it
                info.status, info.error = "broken", f"{type(exc).__name__}: {exc}"
                self.plugins[info.name] = info
                continue
            self.add_plugin(module, info)

    def add_plugin(self, module: ModuleType | object, info: PluginInfo | str) -> PluginInfo:
        """Register a plugin object (a module with hook implementations) and collect its components."""
        if isinstance(info, str):
            info = PluginInfo(name=info, module=getattr(module, "__name__", repr(module)))
        if info.name in self.plugins:
            raise PluginError(f"a plugin named '{info.name}' is already loaded")
        try:
            hash(module)
        except TypeError:  # pluggy's callers of one plugin keep plugins in sets
            raise PluginError(f"plugin '{info.name}': a plugin is a module (or a hashable object), not a "
                              f"{type(module).__name__}") from None
        self.plugins[info.name] = info
        self.plugin_manager.register(module, name=info.name)
        guard_observers(self.plugin_manager, info.name)
        # Through pluggy, for this plugin alone: its ``register`` knows which plugin a component comes from, and a
        # plugin whose registration fails is marked broken without stopping the others.
        try:
            self._caller_for("jasc_register_components", module)(register=self._register_for(info))
            self._register_hook_loggers(module, info)
        except PluginError:
            raise
        except Exception as exc:
            info.status, info.error = "broken", f"jasc_register_components failed: {type(exc).__name__}: {exc}"
        return info

    def _register_hook_loggers(self, module: object, plugin: PluginInfo) -> None:
        """Loggers a plugin of an earlier release serves through ``jasc_logger_names`` only: each becomes a
        ``Logger`` of that plugin with the options every logger has (``dir``), so it is listed, looked up and
        validated like a registered one."""
        for names in self._caller_for("jasc_logger_names", module)():
            for name in names:
                if ("logger", name) in self._components and self._components["logger", name].plugin is plugin:
                    continue  # the plugin registers a Logger class of that name too
                doc = f"the '{name}' logger of plugin '{plugin.name}' (served through jasc_logger_names)"
                self.register_component(type(f"HookLogger_{name}", (Logger,), {"name": name, "__doc__": doc,
                                                                              "__module__": plugin.module}), plugin)

    def _caller_for(self, hook_name: str, module: object) -> pluggy.HookCaller:
        """A pluggy caller of ``hook_name`` that calls ``module``'s implementations only."""
        others = [plugin for plugin in self.plugin_manager.get_plugins() if plugin is not module]
        return self.plugin_manager.subset_hook_caller(hook_name, remove_plugins=others)

    def _register_for(self, plugin: PluginInfo) -> Callable[[type], None]:
        def register(cls: type) -> None:
            self.register_component(cls, plugin)

        return register

    def register_component(self, cls: type, plugin: PluginInfo) -> None:
        if isinstance(cls, type) and issubclass(cls, TaskDescription):
            self.register_task(cls, plugin)
            return
        kind = kind_of(cls)
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin '{plugin.name}': {cls.__qualname__} has no 'name' class attribute")
        key = (kind, name)
        existing = self._components.get(key)
        if existing is not None:
            if existing.cls is cls:
                return
            # Both plugins stay listed; looking the name up raises an error that names both.
            existing.conflicts.append(plugin.name)
            return
        self._components[key] = ComponentInfo(kind=kind, name=name, cls=cls, plugin=plugin)

    def register_task(self, cls: type[TaskDescription], plugin: PluginInfo) -> None:
        """A plugin's task description; a name a built-in or another plugin's task has is an error."""
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name or "/" in name:
            raise PluginError(f"plugin '{plugin.name}': task {cls.__qualname__} needs a 'name' without '/'")
        owner = self.tasks.get(name)
        if (owner is not None and type(owner) is not cls) or (owner is None and name in TASK_DESCRIPTIONS
                                                               and type(TASK_DESCRIPTIONS[name]) is not cls):
            raise PluginError(f"plugin '{plugin.name}': task '{name}' is already known")
        self.tasks[name] = cls()
        self.tasks[name].outputs()  # its output kind is checked now, not when a file is predicted
        if _registry is self:
            install_tasks(list(self.tasks.values()))

    def register_commands(self, app: typer.Typer) -> None:
        """Let every plugin add its commands; a plugin whose hook raises is marked broken, the CLI keeps working."""
        for name, info in self.plugins.items():
            module = self.plugin_manager.get_plugin(name)
            if module is None:  # blocked or broken at import: never registered
                continue
            try:
                self._caller_for("jasc_register_commands", module)(app=app)
            except Exception as exc:
                info.status, info.error = "broken", f"jasc_register_commands failed: {type(exc).__name__}: {exc}"

    @property
    def hook(self) -> pluggy.HookRelay:
        """The pluggy hook relay, for the run-lifecycle hooks (``registry.hook.jasc_run_start(...)``)."""
        return self.plugin_manager.hook

    # -- lookup ------------------------------------------------------------------------------------------------

    def component(self, kind: str, name: str) -> type[Component]:
        info = self.info(kind, name)
        return info.cls

    def info(self, kind: str, name: str) -> ComponentInfo:
        check_kind(kind)
        info = self._components.get((kind, name))
        if info is None:
            raise PluginError(self.unknown_message(kind, name))
        if info.conflicts:
            raise PluginError(info.conflict_message())
        return info

    def unknown_message(self, kind: str, name: str) -> str:
        names = self.names(kind)
        message = f"no {kind} '{name}'; installed: {', '.join(names) or '(none)'}{did_you_mean(name, names)}"
        failed = [p for p in self.plugins.values() if p.status == "broken"]
        if failed:
            message += "; plugins that failed to load: " + "; ".join(f"{p.name} ({p.error})" for p in failed)
        blocked = [p.name for p in self.plugins.values() if p.status == "blocked"]
        if blocked:
            message += f"; blocked by {DISABLE_ENV}: {', '.join(blocked)}"
        return message

    def names(self, kind: str) -> list[str]:
        return sorted(name for (k, name) in self._components if k == kind)

    def components(self, kind: str | None = None) -> list[ComponentInfo]:
        if kind is not None:
            check_kind(kind)
        order = list(KINDS)
        return sorted(
            (info for info in self._components.values() if kind is None or info.kind == kind),
            key=lambda info: (order.index(info.kind), info.name),
        )


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PluginError(f"no component kind '{kind}'; kinds: {', '.join(KINDS)}{did_you_mean(kind, list(KINDS))}")


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, discovering plugins on first use."""
    global _registry
    if _registry is None:
        registry = Registry()
        registry.load_entry_points()
        _registry = registry
        install_tasks(list(registry.tasks.values()))
    return _registry


def reset_registry(registry: Registry | None = None) -> None:
    """Forget the process-wide registry (tests), or install a given one."""
    global _registry
    _registry = registry
    install_tasks(list(registry.tasks.values()) if registry is not None else [])


def component(kind: str, name: str) -> type[Component]:
    """The class registered as ``name`` of ``kind`` (``"features"``, ``"encoder"``, ``"head"``, ``"weighting"``,
    ``"schedule"``, ``"dataset"``, ``"thresholds"``, ``"logger"``)."""
    return get_registry().component(kind, name)


def components(kind: str | None = None) -> list[ComponentInfo]:
    """Everything registered, or one kind's components, with the plugin each came from."""
    return get_registry().components(kind)
