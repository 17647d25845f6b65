"""What a validated recipe looks like to the code that reads it (static types).

The recipe's pydantic model is assembled from the registry at run time (``jasc_core.recipes.model.recipe_model``),
so that a third-party component validates like a built-in one; its class is not known to a type checker. ``Recipe``
describes the attributes every such model has: the core's own blocks with their static models (``recipes/blocks.py``)
and component blocks as pydantic models with a ``name``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from jasc_core.recipes.blocks import EvaluateConfig, InitConfig, OutputConfig, TrainConfig


class ComponentBlock(Protocol):
    """A recipe block that names a registered component (``{name: ..., **its Config fields}``)."""

    name: str

    def model_dump(self) -> dict[str, object]: ...


class HeadsBlock(Protocol):
    """``model.heads``: one optional head block per task; iterating gives ``(task, block or None)``."""

    def __iter__(self) -> Iterator[tuple[str, ComponentBlock | None]]: ...  # type: ignore[override]


class ModelBlock(Protocol):
    encoder: ComponentBlock
    heads: HeadsBlock
    init: InitConfig | None


class Recipe(Protocol):
    """A validated recipe (``load_recipe`` / ``validate_recipe``)."""

    description: str
    seed: int
    data: ComponentBlock
    features: ComponentBlock
    augment: list[ComponentBlock]
    model: ModelBlock
    weighting: ComponentBlock
    schedule: ComponentBlock
    train: TrainConfig
    evaluate: EvaluateConfig
    output: OutputConfig
    log: list[ComponentBlock]  # each a logger's options (jasc_core.contract.logger)

    def model_dump(self) -> dict[str, object]: ...
