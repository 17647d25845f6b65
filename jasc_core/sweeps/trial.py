"""One trial of ``jasc tune``: ``jasc run`` with a run hook that reports each epoch's validation score to the study
and stops the run when the pruner says so. Launchers execute it like a sweep's run:

    python -m jasc_core.sweeps.trial --tune-dir DIR --trial-id ID RECIPE --set ... (--out RUN_DIR | --resume RUN_DIR)

A pruned run ends after the epoch that was judged, its checkpoint kept, with ``status: pruned`` and
``pruned_epoch`` in its run.json; the driver reads that and tells the study.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jasc_core.contract.hookspecs import hookimpl
from jasc_core.contract.registry import get_registry
from jasc_core.errors import JascError, RunError
from jasc_core.recipes.model import load_recipe
from jasc_core.recipes.types import Recipe
from jasc_core.runs.folder import RunFolder
from jasc_core.sweeps.launchers import require
from jasc_core.sweeps.study import PLAN_FILE, open_study
from jasc_core.training import run_recipe

if TYPE_CHECKING:  # optuna is an optional extra (jasc[tune])
    import optuna

PLUGIN_NAME = "jasc_tune_trial"


class TrialPruned(KeyboardInterrupt):
    """Stops a pruned trial's run from inside ``jasc_epoch_end``.

    A ``KeyboardInterrupt`` because that is the one exception the run hooks let through (they switch a plugin that
    raises anything else off and train on): the run stops the way Ctrl-C stops it, after the epoch's checkpoint,
    and ``main`` then records it as pruned.
    """

    def __init__(self, epoch: int) -> None:
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch


class PruningReporter:
    """The trial's run hook: report ``metric`` after each epoch (step = the 1-based epoch), then ask the pruner."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric

    @hookimpl
    def jasc_epoch_end(self, run_dir: str, epoch: int, metrics: Mapping[str, float]) -> None:
        if self.metric not in metrics:
            raise RunError(f"{self.metric} is not among this epoch's metrics ({', '.join(sorted(metrics))})")
        self.trial.report(float(metrics[self.metric]), epoch)
        if self.trial.should_prune():
            raise TrialPruned(epoch)


def run_trial(tune_dir: Path, trial_id: int, recipe: Path, sets: Sequence[str], out: Path | None,
              resume: Path | None) -> str:
    """Train one trial's run; returns how it ended: ``finished`` or ``pruned``."""
    plan = json.loads((Path(tune_dir) / PLAN_FILE).read_text())
    trial = require("optuna", "tune").trial.Trial(open_study(tune_dir, plan), trial_id)
    return run_pruned(trial, plan["metric"], load_recipe(recipe, list(sets)), recipe, out=out, resume=resume)


def run_pruned(trial: optuna.Trial, metric: str, recipe: Recipe, recipe_path: Path | str, *, out: Path | None = None,
               resume: Path | None = None, evaluate: bool = True) -> str:
    """``run_recipe`` with the pruning reporter on the run hooks; a pruned run is marked so in its run.json."""
    registry = get_registry()
    registry.add_plugin(PruningReporter(trial, metric), PLUGIN_NAME)
    try:
        run_dir = run_recipe(recipe, recipe_path=recipe_path, out_dir=out, resume=resume, evaluate=evaluate)
    except TrialPruned as pruned:
        run_dir = Path(getattr(pruned, "run_dir", None) or resume or out)
        RunFolder(run_dir).update_meta(status="pruned", pruned_epoch=pruned.epoch)
        print(f"trial {trial.number}: pruned after epoch {pruned.epoch} ({run_dir})")
        return "pruned"
    finally:  # one reporter per trial, also when trials run one after another in a process
        registry.plugin_manager.unregister(name=PLUGIN_NAME)
        registry.plugins.pop(PLUGIN_NAME, None)
    print(f"trial {trial.number}: finished ({run_dir})")
    return "finished"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jasc_core.sweeps.trial", description=__doc__.split("\n")[0])
    parser.add_argument("--tune-dir", type=Path, required=True)
    parser.add_argument("--trial-id", type=int, required=True)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--resume", type=Path)
    args = parser.parse_args(argv)
    try:
        run_trial(args.tune_dir, args.trial_id, args.recipe, args.sets, args.out, args.resume)
    except JascError as exc:  # as the CLI reports it: one line, no traceback (the driver shows the log's last line)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
