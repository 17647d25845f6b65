"""jasc_loggers: TensorBoard and MLflow loggers that follow a run through the run-lifecycle hooks.

A recipe asks for them by name, with options or without::

    log: [tensorboard, {name: mlflow, experiment: dcase, dir: /data/mlruns}]

Each logger is a ``jasc_core.Logger`` whose ``Config`` holds its options (``jasc show logger tensorboard``), validated
when the recipe loads like every block's, and its own plugin (entry points ``loggers_tensorboard`` and
``loggers_mlflow``), so when one fails mid-run the core switches off only that one. Each needs an optional
dependency, installed with the package extra of the same name (``pip install 'jasc[tensorboard]'``, ``pip install
'jasc[mlflow]'``); a recipe that names a logger whose dependency is missing is rejected when it is loaded (``jasc
validate``), before any training. Nothing is sent anywhere: TensorBoard writes event files, MLflow a local store
(``mlruns/``), both inside the run folder unless the entry's ``dir`` says where.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

from jasc_core import Logger


def missing_dependency(recipe: Mapping[str, object], logger: type[Logger], module: str) -> list[str]:
    """A ``log[i]`` problem when the recipe names ``logger`` but ``module`` is not importable."""
    found = logger.options(recipe)
    if found is None or importlib.util.find_spec(module) is not None:
        return []
    return [f"log[{found[0]}]: the {logger.name} logger needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'jasc[{logger.name}]'"]


def output_dir(run_dir: str, directory: str | None, default: str) -> Path:
    """Where a logger writes: the entry's ``dir`` (relative to the working directory), else ``run_dir/default``."""
    return Path(directory) if directory else Path(run_dir) / default
