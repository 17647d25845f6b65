"""Marking a field of a core config model as "a component block of kind K".

The recipe model is assembled from the registry at run time; core models that embed a component block (for example
``evaluate.tune_thresholds``) annotate the field with ``ComponentSlot(kind)`` and the assembler swaps in the union of
that kind's registered blocks, so the block validates exactly like a top-level one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComponentSlot:
    """``Annotated[dict | None, ComponentSlot("thresholds")]``: this field holds a block of that kind."""

    kind: str
