"""The plugin contract as a plugin author relies on it: registration, lookup, errors, discovery."""

from __future__ import annotations

import types

import pytest
from pydantic import BaseModel

from jasc_core import ConfigError, PluginError, Weighting, component, components, hookimpl
from jasc_core.contract.registry import PluginInfo, Registry


class EqualWeights(Weighting):
    """Equal weights (DESIGN.md's example)."""

    name = "equal"

    class Config(BaseModel):  # a plain BaseModel: the base class must still forbid extra keys
        scale: float = 1.0

    def combine(self, losses, context):
        return self.config.scale * sum(losses.values())


def plugin_module(*classes: type) -> types.ModuleType:
    @hookimpl
    def jasc_register_components(register):
        for cls in classes:
            register(cls)

    return _module(jasc_register_components=jasc_register_components)


def _module(**hooks: object) -> types.ModuleType:
    """A plugin module made in memory (plugins are modules: hashable, which pluggy's callers of one plugin need)."""
    module = types.ModuleType("test_plugin")
    for name, function in hooks.items():
        setattr(module, name, function)
    return module


def test_design_example_builds_from_block_with_defaults():
    weights = EqualWeights({"scale": 2.0})
    assert weights.config.scale == 2.0
    assert EqualWeights().config.scale == 1.0
    assert EqualWeights({"name": "equal"}).config.scale == 1.0  # a recipe block may carry its name


def test_extra_keys_rejected_even_without_forbid():
    with pytest.raises(ConfigError, match=r"weighting\.scal: extra field; did you mean 'scale'\?"):
        EqualWeights({"scal": 2.0})


def test_wrong_type_names_field():
    with pytest.raises(ConfigError, match=r"weighting\.scale"):
        EqualWeights({"scale": "big"})


def test_component_lookup_and_listing(toy_registry):
    assert component("weighting", "toy_weighting").__name__ == "ToyWeighting"
    listed = {(info.kind, info.name): info for info in components()}
    assert listed[("weighting", "toy_weighting")].plugin.name == "toy"
    assert all(info.kind == "head" for info in components("head"))


def test_unknown_name_suggests(toy_registry):
    with pytest.raises(PluginError, match=r"no weighting 'toy_weightin'; installed: .*did you mean 'toy_weighting'\?"):
        component("weighting", "toy_weightin")


def test_unknown_kind():
    with pytest.raises(PluginError, match=r"no component kind 'weights'.*did you mean 'weighting'"):
        component("weights", "x")


def test_duplicate_names_both_plugins():
    registry = Registry()
    registry.add_plugin(plugin_module(EqualWeights), "first")

    class Other(Weighting):
        """Another 'equal'."""

        name = "equal"

    registry.add_plugin(plugin_module(Other), "second")
    with pytest.raises(PluginError, match=r"weighting 'equal' is registered by more than one plugin: 'first' and 'second'"):
        registry.component("weighting", "equal")
    row = next(info.as_dict() for info in registry.components("weighting"))
    assert row["status"] == "broken" and "'second'" in row["error"]


def test_hook_with_fewer_arguments_is_called():
    registry = Registry()
    calls = []

    @hookimpl
    def jasc_register_commands():
        calls.append(True)

    registry.add_plugin(_module(jasc_register_commands=jasc_register_commands), "quiet")
    registry.register_commands(app=object())
    assert calls == [True]


def test_non_component_rejected():
    registry = Registry()
    with pytest.raises(ConfigError, match="not a jasc component"):
        registry.register_component(int, PluginInfo("bad", "bad"))


def test_broken_and_blocked_plugins(monkeypatch):
    """A plugin that raises on import is listed as broken; a blocked one is never imported; discovery goes on."""
    from importlib import metadata

    class FakeEntryPoint:
        def __init__(self, name, target):
            self.name, self.value, self.dist, self._target = name, f"fake_{name}", None, target

        def load(self):
            return self._target()

    def explode():
        raise ImportError("missing dependency 'frobnicate'")

    points = [FakeEntryPoint("good", lambda: plugin_module(EqualWeights)), FakeEntryPoint("boom", explode),
              FakeEntryPoint("off", explode)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: points if group == "jasc" else [])
    monkeypatch.setenv("JASC_DISABLE_PLUGINS", "off, other")
    registry = Registry()
    registry.load_entry_points()
    assert registry.plugins["good"].status == "ok"
    assert registry.plugins["boom"].status == "broken"
    assert "frobnicate" in registry.plugins["boom"].error
    assert registry.plugins["off"].status == "blocked"
    assert registry.component("weighting", "equal") is EqualWeights
    with pytest.raises(PluginError, match=r"plugins that failed to load: boom \(ImportError: missing dependency"):
        registry.component("weighting", "mine")


def test_builtins_come_through_entry_points(jasc_registry):
    """Built-in plugins are loaded exactly like third-party ones: each is an entry point of the jasc distribution."""
    builtins = {name: info for name, info in jasc_registry.plugins.items() if info.distribution == "jasc"}
    assert {"weighting", "tonami"} <= set(builtins)
    assert all(info.status == "ok" for info in builtins.values()), {n: i.error for n, i in builtins.items()}
    for info in jasc_registry.components():
        assert info.plugin.name in jasc_registry.plugins


def test_core_imports_no_plugin():
    """The core never imports a plugin: importing every core module leaves plugin packages unimported."""
    import subprocess
    import sys

    code = (
        "import sys, pkgutil, importlib, jasc_core\n"
        "for m in pkgutil.iter_modules(jasc_core.__path__):\n"
        "    if m.name not in ('cli',): importlib.import_module('jasc_core.' + m.name)\n"
        "print(sorted(n for n in sys.modules if n.startswith('jasc_') and not n.startswith('jasc_core')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
