"""The Optuna study of ``jasc tune``, kept in the tune folder so that the driver and every trial's run (on any
launcher) open the same one, and an interrupted study resumes.

The storage is Optuna's journal file (``study.journal``): an append-only log with file locks, which many processes,
also on several nodes of a shared filesystem, can write at once, unlike SQLite.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jasc_core.contract.json_types import JSONObject
from jasc_core.sweeps.launchers import require

if TYPE_CHECKING:  # optuna is an optional extra (jasc[tune])
    import optuna

STUDY_NAME = "jasc-tune"
JOURNAL_FILE = "study.journal"
PLAN_FILE = "tune.json"


def open_study(tune_dir: Path, plan: JSONObject) -> optuna.Study:
    """The study of ``tune_dir`` (created on first use) with the sampler and pruner the plan names.

    Pruning: Optuna's ``MedianPruner``: after epoch ``e`` (beyond the warm-up), a trial whose validation score is
    worse than the median of earlier trials' scores at epoch ``e`` stops; the first ``startup_trials`` trials are
    never pruned, so that there is a median to compare with.
    """
    optuna = require("optuna", "tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(Path(tune_dir).resolve() / JOURNAL_FILE)))
    if plan["sampler"] == "random":
        sampler = optuna.samplers.RandomSampler(seed=plan["seed"])
    else:
        sampler = optuna.samplers.TPESampler(seed=plan["seed"], n_startup_trials=plan["startup_trials"])
    if plan["prune"]:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=plan["startup_trials"],
                                             n_warmup_steps=plan["warmup_epochs"])
    else:
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler, pruner=pruner,
                               direction="maximize" if plan["direction"] == "max" else "minimize",
                               load_if_exists=True)
