"""What ``jasc tune`` leaves behind: trials.csv, the best recipe resolved (best.yaml) and the study plot (study.png).

Read from the study and the trials' run folders only, so a resumed or finished study can be reported again.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jasc_core.contract.json_types import JSONObject
from jasc_core.runs.atomic_files import atomic_write
from jasc_core.sweeps.launchers import require

if TYPE_CHECKING:  # optuna is an optional extra (jasc[tune])
    import optuna


def trial_score(run_dir: Path, plan: JSONObject) -> float | None:
    """The best value of the plan's validation metric over the run's epochs (history.json), or None."""
    try:
        history = json.loads((run_dir / "history.json").read_text())
    except (OSError, ValueError):
        return None
    values = [float(r["val"][plan["metric"]]) for r in history if plan["metric"] in r.get("val", {})]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return max(values) if plan["direction"] == "max" else min(values)


def write_reports(study: optuna.Study, plan: JSONObject, out: Path, echo: Callable[[str], None]) -> JSONObject:
    """trials.csv, best.yaml and study.png; returns the summary (counts per state, the best trial)."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("interrupted")]
    rows = [{"number": t.number, "state": t.state.name.lower(), "score": t.value if t.value is not None else "",
             "epochs": max(t.intermediate_values, default=0), "run": str(out / "trials" / f"{t.number:04d}"),
             **t.params, "error": t.user_attrs.get("error", "")} for t in trials]
    write_csv(out / "trials.csv", rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary: JSONObject = {"metric": plan["metric"], "direction": plan["direction"], "trials": counts,
                               "best": None}
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        summary["best"] = {"number": best.number, "score": best.value, "params": best.params,
                           "recipe": str(out / "best.yaml")}
        write_best_recipe(out, best, plan)
    if trials:
        plot_study(trials, plan, out / "study.png")
    echo(f"tune {out}: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return summary


def write_best_recipe(out: Path, best: optuna.trial.FrozenTrial, plan: JSONObject) -> None:
    """The best trial's resolved recipe (as its run wrote it), with a header saying where it comes from."""
    recipe = (out / "trials" / f"{best.number:04d}" / "recipe.yaml").read_text()
    params = ", ".join(f"{k}={v!r}" for k, v in best.params.items())
    header = (f"# jasc tune {out}: best of the study, trial {best.number}, {plan['metric']} = {best.value:.6g}\n"
              f"# ({params}); resolved: every default filled in. Run it with: jasc run {out / 'best.yaml'}\n")
    with atomic_write(out / "best.yaml") as handle:
        handle.write(header + recipe)


def write_csv(path: Path, rows: list[JSONObject]) -> None:
    keys = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def plot_study(trials: list[optuna.trial.FrozenTrial], plan: JSONObject, path: Path) -> None:
    """Left: each trial's score (pruned ones at their last reported value) and the best so far. Right: every
    trial's validation curve per epoch, pruned trials dashed: where the pruner stopped them."""
    require("matplotlib", "tune")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    better = max if plan["direction"] == "max" else min
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    best_so_far, xs, ys = None, [], []
    for t in sorted(trials, key=lambda t: t.number):
        steps = sorted(t.intermediate_values)
        if t.state.name == "COMPLETE":
            left.scatter(t.number, t.value, color="tab:blue", zorder=3)
            best_so_far = t.value if best_so_far is None else better(best_so_far, t.value)
        elif t.state.name == "PRUNED" and steps:
            left.scatter(t.number, t.intermediate_values[steps[-1]], marker="x", color="tab:red", zorder=3)
        if best_so_far is not None:
            xs.append(t.number)
            ys.append(best_so_far)
        if steps:
            style = {"linestyle": "--", "color": "tab:red", "alpha": 0.6} if t.state.name == "PRUNED" else {}
            right.plot(steps, [t.intermediate_values[s] for s in steps], marker=".", label=f"{t.number}", **style)
    left.step(xs, ys, where="post", color="tab:green", label="best so far")
    left.scatter([], [], color="tab:blue", label="completed")
    left.scatter([], [], marker="x", color="tab:red", label="pruned (last value)")
    left.set(xlabel="trial", ylabel=plan["metric"], title="score per trial")
    right.set(xlabel="epoch", ylabel=plan["metric"], title="validation per epoch (pruned dashed)")
    left.legend(fontsize=7)
    right.legend(fontsize=6, ncol=2, title="trial", title_fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
