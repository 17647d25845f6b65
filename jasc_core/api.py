"""What plugins' commands may call besides the component contract (``jasc_core``'s own names).

A plugin imports ``jasc_core`` and ``jasc_core.api`` only; everything else in the core may move between releases.
These are the run-level functions a plugin's command needs: read a recipe, build a component from a block, tune and
store thresholds of a run, and print tables the way jasc's own commands do.
"""

from __future__ import annotations

from jasc_core.console import output_console
from jasc_core.evaluation import evaluate_run, save_thresholds, stored_thresholds, tune_thresholds
from jasc_core.inference.scoring import predict_scores
from jasc_core.recipes.model import build, load_recipe

__all__ = [
    "build",
    "evaluate_run",
    "load_recipe",
    "output_console",
    "predict_scores",
    "save_thresholds",
    "stored_thresholds",
    "tune_thresholds",
]
