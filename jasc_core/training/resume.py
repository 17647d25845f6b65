"""Opening a run folder to continue it (``jasc run --resume RUN_DIR``): which recipe, and what there is to resume.

The recipe is the run's own: ``recipe.yaml`` when it still matches the hash in ``run.json``; if somebody edited it
since, the resolved recipe stored in ``checkpoints/last.pt`` (every checkpoint carries the recipe it was written
for), and the user is told which one was used. A recipe given on the command line must match the run's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from jasc_core.contract.json_types import JSONObject
from jasc_core.errors import RunError
from jasc_core.recipes.model import identity_dict, load_recipe, resolved_dict, validate_recipe
from jasc_core.recipes.types import Recipe
from jasc_core.runs.checkpoints import load_checkpoint
from jasc_core.runs.folder import RunFolder, open_run
from jasc_core.runs.liveness import liveness

log = logging.getLogger("jasc")


def open_for_resume(path: str | Path, recipe: Recipe | None = None, *,
                    check_alive: bool = True) -> tuple[RunFolder, Recipe]:
    """The run folder and the recipe to continue it with; RunError when there is nothing to resume, or when
    ``check_alive`` and a live process still trains it (``jasc_core.runs.liveness``; under torchrun only the main
    process checks: the others may run on other hosts, where the pid means nothing)."""
    run = open_run(path)
    meta = run.read_meta()
    if check_alive:
        refuse_live_run(run, meta)
    if recipe is None:
        recipe = _run_recipe(run, meta)
    else:
        check_same_recipe(run, recipe, meta)
    if meta.get("status") == "finished":
        raise RunError(f"{run.root} is a finished run; nothing to resume (`jasc evaluate {run.root}` evaluates it "
                       "again)")
    if not run.last.is_file():
        log.warning("%s has no checkpoint yet: training starts from epoch 1", run.root)
    return run, recipe


def refuse_live_run(run: RunFolder, meta: JSONObject) -> None:
    """RunError when ``run.json`` says a live process is training this run (two processes must not write it)."""
    state = liveness(meta)
    if state.alive:
        raise RunError(f"{run.root} is still running ({state.detail}); stop that process first (SIGTERM or Ctrl-C "
                       f"checkpoints and marks it interrupted), or wait until it ends")
    if state.status.startswith("interrupted: process gone"):
        log.warning("%s: %s (%s); resuming from its last checkpoint", run.root, state.status, state.detail)


def _run_recipe(run: RunFolder, meta: JSONObject) -> Recipe:
    written = load_recipe(run.recipe)
    if run.recipe_hash(identity_dict(written)) == meta.get("recipe_hash"):
        return written
    state = load_checkpoint(run.last).training if run.last.is_file() else None
    stored = state.recipe if state is not None else None
    if stored is None:
        raise RunError(f"{run.recipe} was edited since the run started and no checkpoint holds the original; "
                       "start a new run")
    recipe = validate_recipe(stored, source=f"{run.last} (stored recipe)")
    log.warning("%s was edited since the run started; resuming with the recipe stored in %s", run.recipe, run.last)
    return recipe


def check_same_recipe(run: RunFolder, recipe: Recipe, meta: JSONObject) -> None:
    if meta.get("recipe_hash") == run.recipe_hash(identity_dict(recipe)):
        return
    resolved = resolved_dict(recipe)
    changed = []
    try:
        stored = yaml.safe_load(run.recipe.read_text(encoding="utf-8")) or {}
        changed = [key for key in run.hashed_blocks() if stored.get(key) != resolved.get(key)]
    except (OSError, yaml.YAMLError):  # the hash already says it changed; the block names are a courtesy
        pass
    detail = f" (changed: {', '.join(changed)})" if changed else ""
    raise RunError(
        f"cannot resume {run.root}: the recipe differs from the one the run started with{detail}; "
        f"resume with `jasc run --resume {run.root}` alone (the run's own recipe) or start a new run"
    )
