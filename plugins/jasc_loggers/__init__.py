"""jasc_loggers: TensorBoard and MLflow loggers that follow a run through the run-lifecycle hooks.

A recipe asks for them by name::

    log: [tensorboard, mlflow]          # or {name: mlflow, dir: /data/mlruns}

Each logger is its own plugin (entry points ``loggers_tensorboard`` and ``loggers_mlflow``), so when one fails
mid-run the core switches off only that one. Each needs an optional dependency, installed with the package extra of
the same name (``pip install 'jasc[tensorboard]'``, ``pip install 'jasc[mlflow]'``); a recipe that names a logger
whose dependency is missing is rejected when it is loaded (``jasc validate``), before any training. Nothing is sent
anywhere: TensorBoard writes event files, MLflow a local file store (``mlruns/``), both inside the run folder unless
the entry's ``dir`` says where.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def logger_entry(recipe: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The resolved recipe's ``log`` entry for ``name`` (``{name, dir}``), or None when the run does not ask for it."""
    for index, entry in enumerate(recipe.get("log") or ()):
        if entry.get("name") == name:
            return {"index": index, **entry}
    return None


def missing_dependency(recipe: Mapping[str, Any], name: str, module: str) -> list[str]:
    """A ``log[i]`` problem when the recipe names logger ``name`` but ``module`` is not importable."""
    entry = logger_entry(recipe, name)
    if entry is None or importlib.util.find_spec(module) is not None:
        return []
    return [f"log[{entry['index']}]: the {name} logger needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'jasc[{name}]'"]


def output_dir(run_dir: str, entry: Mapping[str, Any], default: str) -> Path:
    """Where a logger writes: the entry's ``dir`` (relative to the working directory), else ``run_dir/default``."""
    return Path(entry["dir"]) if entry.get("dir") else Path(run_dir) / default
