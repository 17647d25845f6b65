"""``jasc tune``: hyper-parameter search with Optuna over recipe fields, each trial a ``jasc run`` on a launcher.

    <tune>/
      tune.json          the plan (recipe, space, metric, sampler, pruner); a resumed study must find it unchanged
      study.journal      the Optuna study (every trial, its parameters, per-epoch scores and state)
      trials/<NNNN>/     one run folder per trial; logs/<NNNN>.log its console output
      trials.csv         number, state, score, epochs trained and parameters of every trial
      best.yaml          the best trial's recipe, resolved (every default filled in): ``jasc run best.yaml``
      study.png          score per trial with the best so far, and each trial's validation curve (pruned dashed)

The score of a trial is the best value of the validation metric over its epochs (the one ``train.select_metric``
picks the checkpoint by, unless ``--metric`` names another); it never reads the evaluation split. Trials that were
running when the driver stopped are marked failed on resume and their parameters are tried again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jasc_core.contract.json_types import JSONObject, JSONValue
from jasc_core.errors import ConfigError
from jasc_core.evaluation.validation import selectable_metrics
from jasc_core.recipes.files import parse_set
from jasc_core.recipes.model import load_recipe, resolved_dict
from jasc_core.recipes.types import Recipe
from jasc_core.sweeps.launchers import Launcher, LauncherConfig, check_available, make_launcher, require
from jasc_core.sweeps.plan import jasc_run_command, run_status, write_or_check_plan
from jasc_core.sweeps.study import PLAN_FILE, open_study
from jasc_core.sweeps.sweep import threads_per_run
from jasc_core.sweeps.tune_report import trial_score, write_reports
from jasc_core.training.run import model_tasks

if TYPE_CHECKING:  # optuna is an optional extra (jasc[tune])
    import optuna

_SPACE = re.compile(r"^\s*(?P<path>[\w.]+)\s*=\s*(?P<kind>log|float|int|choice)\((?P<args>.*)\)\s*$")
KINDS = "log(LOW,HIGH), float(LOW,HIGH), int(LOW,HIGH) or choice(V1,V2,...)"


def parse_space(expressions: Sequence[str]) -> list[tuple[str, str, list[JSONValue]]]:
    """``["train.optimizer.lr=log(1e-4,1e-2)"]`` -> ``[("train.optimizer.lr", "log", [0.0001, 0.01])]``."""
    space = []
    for expression in expressions:
        match = _SPACE.match(expression)
        if not match:
            raise ConfigError(f"--space {expression}: expected PATH={KINDS}")
        path, kind = match["path"], match["kind"]
        values = [_value(path, text.strip()) for text in match["args"].split(",") if text.strip()]
        if kind == "choice":
            if len(values) < 2:
                raise ConfigError(f"--space {expression}: choice needs at least two values")
        else:
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if len(values) != 2 or not numeric or not values[0] < values[1]:
                raise ConfigError(f"--space {expression}: {kind} needs two numbers LOW < HIGH")
            if kind == "log" and values[0] <= 0:
                raise ConfigError(f"--space {expression}: log needs LOW > 0")
            if kind == "int" and not all(isinstance(v, int) for v in values):
                raise ConfigError(f"--space {expression}: int needs integer bounds")
        space.append((path, kind, values))
    paths = [path for path, _, _ in space]
    if not space or len(set(paths)) != len(paths):
        raise ConfigError("--space: give each recipe path once (at least one)")
    return space


def _value(path: str, text: str) -> JSONValue:
    """A bound or a choice: a number as Python reads it (YAML reads ``1e-4`` as a string), else a YAML scalar."""
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return parse_set(f"{path}={text}")[1]


def suggest(trial: optuna.Trial, space: Sequence[tuple[str, str, list[JSONValue]]]) -> list[str]:
    """Draw the trial's values; returns them as ``--set`` expressions."""
    sets = []
    for path, kind, values in space:
        if kind == "choice":
            value = trial.suggest_categorical(path, values)
        elif kind == "int":
            value = trial.suggest_int(path, values[0], values[1])
        else:
            value = trial.suggest_float(path, float(values[0]), float(values[1]), log=kind == "log")
        sets.append(f"{path}={json.dumps(value)}")
    return sets


def baseline_values(recipe: Recipe, space: Sequence[tuple[str, str, list[JSONValue]]]) -> JSONObject | None:
    """The recipe's own value of every searched field, when all lie inside the space (else None)."""
    values = {}
    for path, kind, bounds in space:
        value: JSONValue = resolved_dict(recipe)
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        inside = value in bounds if kind == "choice" else (
            isinstance(value, int | float) and bounds[0] <= value <= bounds[1])
        if not inside:
            return None
        values[path] = value
    return values


def tune_plan(recipe_path: Path, space: list, sets: Sequence[str], metric: str | None, direction: str | None,
              *, sampler: str, seed: int, prune: bool, startup_trials: int, warmup_epochs: int,
              baseline: bool = True) -> JSONObject:
    """The plan, checked: every bound of the space loads as a recipe, and the metric is computed each epoch."""
    recipe = load_recipe(recipe_path, list(sets))
    for path, kind, values in space:
        for value in values if kind == "choice" else values[:2]:
            load_recipe(recipe_path, [*sets, f"{path}={json.dumps(value)}"])
    metric = metric or recipe.train.select_metric
    metric = metric if metric.startswith("val/") else f"val/{metric}"
    names = selectable_metrics(model_tasks(recipe))
    if metric not in names:
        raise ConfigError(f"--metric {metric}: not a validation metric of this model; choose one of {', '.join(names)}")
    if direction is None:
        direction = recipe.train.select_mode if metric == recipe.train.select_metric else (
            "min" if "/loss" in metric else "max")
    return {"recipe": str(Path(recipe_path).resolve()), "space": [list(s) for s in space], "sets": list(sets),
            "metric": metric, "direction": direction, "sampler": sampler, "seed": seed, "prune": prune,
            "startup_trials": startup_trials, "warmup_epochs": warmup_epochs,
            "baseline": baseline_values(recipe, space) if baseline else None}


def run_tune(
    recipe_path: Path,
    space: Sequence[str],
    *,
    trials: int,
    out: Path,
    sets: Sequence[str] = (),
    metric: str | None = None,
    direction: str | None = None,
    jobs: int = 1,
    threads: int | None = None,
    launcher: LauncherConfig | None = None,
    sampler: str = "tpe",
    seed: int = 0,
    prune: bool = True,
    startup_trials: int = 4,
    warmup_epochs: int = 0,
    baseline: bool = True,
    echo: Callable[[str], None] = print,
    make: Callable[[LauncherConfig, int, Path], Launcher] = make_launcher,
) -> JSONObject:
    """Run the study until ``trials`` trials have ended (completed, pruned or failed), ``jobs`` at a time; write
    trials.csv, best.yaml and study.png; return the summary (best trial, counts)."""
    if trials < 1:
        raise ConfigError(f"--trials {trials}: need at least one trial")
    require("optuna", "tune")
    config = launcher or LauncherConfig()
    check_available(config)
    out = Path(out)
    plan = tune_plan(recipe_path, parse_space(space), sets, metric, direction, sampler=sampler, seed=seed,
                     prune=prune, startup_trials=startup_trials, warmup_epochs=warmup_epochs, baseline=baseline)
    write_or_check_plan(out, plan, what="tune study", file=PLAN_FILE)
    study = open_study(out, plan)
    if plan["baseline"] is not None and not study.trials:
        # Trial 0 is the recipe as written: the study's best is then never worse than the starting point, and the
        # table shows what tuning gained.
        study.enqueue_trial(plan["baseline"])
    retry_interrupted(study, echo)
    ended = len(ended_trials(study))
    echo(f"tune {out}: {trials} trials ({ended} already ended), {jobs} at a time ({config.name}); "
         f"{plan['direction']}imise {plan['metric']}")
    per_run = threads_per_run(config, jobs, threads)
    if ended < trials:
        with make(config, jobs, out) as pool:
            asked: dict[str, optuna.Trial] = {}
            while ended + len(asked) < trials and len(asked) < jobs:
                ask_and_submit(study, plan, out, per_run, pool, asked)
            while asked:
                command, error = pool.next_done()
                tell(study, plan, asked.pop(command.label), Path(command.run_dir), error, echo)
                ended += 1
                if ended + len(asked) < trials:
                    ask_and_submit(study, plan, out, per_run, pool, asked)
    return write_reports(study, plan, out, echo)


def ask_and_submit(study: optuna.Study, plan: JSONObject, out: Path, threads: int, pool: Launcher,
                   asked: dict[str, optuna.Trial]) -> None:
    trial = study.ask()
    name = f"{trial.number:04d}"
    # The trial's run finds the study by its id (Optuna's Trial(study, trial_id) is how another process joins it).
    module = ("jasc_core.sweeps.trial", "--tune-dir", str(out.resolve()), "--trial-id", str(trial._trial_id))
    sets = [*plan["sets"], *suggest(trial, plan["space"])]
    pool.submit([jasc_run_command(plan["recipe"], sets, out / "trials" / name, out / "logs" / f"{name}.log", threads,
                                  name, module=module)])
    asked[name] = trial


def tell(study: optuna.Study, plan: JSONObject, trial: optuna.Trial, run_dir: Path, error: str, echo: Callable[[str], None]) -> None:
    """Tell the study how the trial's run ended: its score, pruned, or failed (with the error line)."""
    state = require("optuna", "tune").trial.TrialState
    status = run_status(run_dir)
    if status == "pruned" and not error:
        study.tell(trial, state=state.PRUNED)
        echo(f"  trial {trial.number} pruned   {_params(trial)}")
        return
    score = trial_score(run_dir, plan) if status == "finished" and not error else None
    if score is None:
        trial.set_user_attr("error", error or f"run ended with status {status}")
        study.tell(trial, state=state.FAIL)
        echo(f"  trial {trial.number} failed   {error or status} (log: {run_dir.parent.parent / 'logs'})")
        return
    study.tell(trial, score)
    echo(f"  trial {trial.number} {plan['metric']} = {score:.4f}   {_params(trial)}")


def ended_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count towards ``--trials``: completed, pruned, or failed in their own run (not interrupted)."""
    state = require("optuna", "tune").trial.TrialState
    return [t for t in study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED, state.FAIL))
            if not t.user_attrs.get("interrupted")]


def retry_interrupted(study: optuna.Study, echo: Callable[[str], None]) -> None:
    """Trials left running by a driver that stopped: marked failed (interrupted), their parameters asked again."""
    optuna = require("optuna", "tune")
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(frozen.params)
        echo(f"  trial {frozen.number} was interrupted; its parameters will be tried again")


def _params(trial: optuna.Trial | optuna.trial.FrozenTrial) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
