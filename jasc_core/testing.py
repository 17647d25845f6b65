"""Conformance checks for jasc components: a pytest plugin installed with jasc (entry point ``pytest11``).

A plugin author tests their component the way the built-ins test theirs::

    from jasc_core.testing import check_component
    from jasc_myweights import EqualWeights

    def test_conforms():
        check_component(EqualWeights, {"scale": 2.0})

or through the ``jasc_conformance`` fixture. The checks: the class derives from a kind's base class and has a
``name`` and a pydantic ``Config``; it is registered under that name by an installed plugin; its config defaults
validate; an unknown key is rejected; an instance builds from its recipe block (the kind's ``conformance_kwargs``
supply sizes for modules); the block validates inside a recipe's component slot; every config field has help text.

This module is imported by every pytest session in an environment with jasc installed, so it imports jasc lazily.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # jasc is imported lazily (module docstring)
    from jasc_core.contract.components import Component
    from jasc_core.contract.registry import Registry

_UNKNOWN_KEY = "this_key_is_not_a_field"


def check_component(
    cls: type,
    block: Mapping[str, object] | None = None,
    *,
    registered: bool = True,
    require_help: bool = True,
    **build_kwargs: object,
) -> Component:
    """Run every conformance check on ``cls`` and return the instance built from ``block``.

    ``block`` is the recipe block without ``name`` (default: empty, i.e. all defaults). ``registered=False`` skips the
    registry check for a class that is not installed through an entry point (e.g. defined inside a test).
    ``build_kwargs`` override the kind's ``conformance_kwargs`` (e.g. ``n_classes=4`` for a head).
    """
    from pydantic import BaseModel

    from jasc_core.contract.components import Component
    from jasc_core.contract.kinds import kind_of
    from jasc_core.contract.registry import get_registry
    from jasc_core.errors import ConfigError
    from jasc_core.recipes.model import _block_model

    block = dict(block or {})
    assert isinstance(cls, type) and issubclass(cls, Component), f"{cls!r} does not derive from a jasc kind"
    kind = kind_of(cls)
    name = cls.__dict__.get("name") or getattr(cls, "name", "")
    assert isinstance(name, str) and name, f"{cls.__qualname__}: set a non-empty class attribute 'name'"
    assert isinstance(cls.Config, type) and issubclass(cls.Config, BaseModel), f"{cls.__qualname__}.Config"
    assert cls.description(), f"{kind} '{name}': give the class a docstring (its first line is the listing)"

    if registered:
        found = get_registry().component(kind, name)
        assert found is cls, f"{kind} '{name}' resolves to {found!r}, not {cls!r}"

    config = cls.validate_config(block)
    assert isinstance(config, cls.Config)

    with pytest.raises(ConfigError, match=_UNKNOWN_KEY):
        cls.validate_config({**block, _UNKNOWN_KEY: 1})

    if require_help:
        missing = [field for field, info in cls.Config.model_fields.items() if not info.description]
        assert not missing, f"{kind} '{name}': config fields without description= (shown by `jasc show`): {missing}"

    recipe_block = _block_model(cls, name, kind).model_validate({"name": name, **block})
    assert recipe_block.name == name

    kwargs = {**cls.conformance_kwargs, **build_kwargs}
    instance = cls(block, **kwargs)
    assert isinstance(instance.config, cls.Config)
    assert instance.config == config, "the constructor must keep the validated config in self.config"
    return instance


@pytest.fixture
def jasc_conformance():
    """``check_component`` as a fixture."""
    return check_component


@pytest.fixture
def jasc_registry() -> Iterator[Registry]:
    """A fresh registry loaded from the installed entry points, installed as the process-wide one for the test.

    Tests may add plugins to it (``jasc_registry.add_plugin(module, "name")``) without affecting other tests.
    """
    from jasc_core.contract.registry import Registry, get_registry, reset_registry

    previous = get_registry()
    registry = Registry()
    registry.load_entry_points()
    reset_registry(registry)
    try:
        yield registry
    finally:
        reset_registry(previous)
