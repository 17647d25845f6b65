"""A tiny trained run for the inference tests: engine fakes trained until they separate the scenes and find beeps."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import engine_fakes

from jasc_core import training
from jasc_core.contract.registry import Registry, get_registry, reset_registry


@contextmanager
def trained_fake_run(folder: Path, plugins: Sequence[tuple[object, str]] = (), **overrides: Any) -> Iterator[Path]:
    """Train a fakes run (about 4 s on one CPU thread) with the fakes (and ``plugins``: ``(module, name)``)
    registered; they stay registered inside."""
    previous = get_registry()
    registry = Registry()
    registry.load_entry_points()
    registry.add_plugin(engine_fakes, "engine_fakes")
    for plugin, name in plugins:
        registry.add_plugin(plugin, name)
    reset_registry(registry)
    try:
        recipe = engine_fakes.make_recipe(**{"train.epochs": 30, "data.n_train": 48, "evaluate.plots": False,
                                             "train.optimizer.lr": 0.02, **overrides})
        yield training.run_recipe(recipe, recipe_path="fake.yaml", out_dir=folder)
    finally:
        reset_registry(previous)
