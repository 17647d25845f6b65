"""How many classes each head of a recipe has, without reading data (profiling and ``jasc validate``'s dry run).

In order: the head block's own ``n_classes``; the dataset config's ``<task>_labels`` list; else a placeholder,
001's joint TUT data (4 scenes, 25 events), which is what the papers' recipes use.
"""

from __future__ import annotations

from jasc_core.recipes.types import Recipe

#: Class counts used when a recipe states none: 001's joint TUT dataset (4 scenes, 25 events).
DEFAULT_N_CLASSES = {"scene": 4, "event": 25}


def class_counts(
    recipe: Recipe, tasks: list[str], default_source: str = "placeholder"
) -> tuple[dict[str, int], dict[str, str]]:
    """The class count of each task in ``tasks`` and where it came from (see the module docstring); a placeholder
    count is labelled ``default_source``."""
    counts: dict[str, int] = {}
    source: dict[str, str] = {}
    for task in tasks:
        block = getattr(recipe.model.heads, task)
        stated = block.model_dump().get("n_classes") if hasattr(block, "model_dump") else None
        vocabulary = getattr(recipe.data, f"{task}_labels", None)
        if stated:
            counts[task], source[task] = int(stated), f"model.heads.{task}.n_classes"
        elif vocabulary:
            counts[task], source[task] = len(vocabulary), f"data.{task}_labels"
        else:
            counts[task], source[task] = DEFAULT_N_CLASSES.get(task, 1), default_source
    return counts, source
