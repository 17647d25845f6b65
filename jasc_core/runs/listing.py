"""Run folders as a listing shows them (``jasc runs``): status checked for a live process, epochs, best value."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from jasc_core.contract.json_types import JSONObject
from jasc_core.runs.folder import RunFolder, find_runs, read_json
from jasc_core.runs.liveness import liveness


def run_row(root: Path) -> JSONObject:
    """One run folder's line: ``run``, ``status`` (``interrupted: process gone`` for a dead ``running`` run),
    ``epochs`` trained (from history.json), ``best`` (metric=value at epoch) and ``detail``."""
    run = RunFolder(Path(root))
    try:
        meta = run.read_meta()
    except (OSError, ValueError) as exc:
        return {"run": str(root), "status": "unreadable", "epochs": None, "best": "", "detail": str(exc)}
    state = liveness(meta)
    try:
        history: list[JSONObject] = read_json(run.history)  # type: ignore[assignment]
    except (OSError, ValueError):
        history = []
    best = meta.get("best") or _best_so_far(run, history)
    best_text = (f"{best.get('metric')}={best['value']:.4f} (epoch {best.get('epoch')})"
                 if isinstance(best.get("value"), int | float) else "")
    epochs = len(history) if history else meta.get("epochs_trained")
    detail = state.detail or str(meta.get("error") or "")
    return {"run": str(root), "status": state.status, "alive": state.alive, "epochs": epochs, "best": best_text,
            "detail": detail}


def _best_so_far(run: RunFolder, history: list[JSONObject]) -> JSONObject:
    """A run still training (or stopped) has no ``best`` in run.json yet: its last selected epoch in history.json,
    measured with the recipe's ``train.select_metric``."""
    selected = [record for record in history if record.get("selected")]
    if not selected:
        return {}
    try:
        metric = (yaml.safe_load(run.recipe.read_text(encoding="utf-8")) or {})["train"]["select_metric"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    return {"metric": metric, "value": selected[-1].get("val", {}).get(metric), "epoch": selected[-1].get("epoch")}


def run_rows(folders: Iterable[Path]) -> list[JSONObject]:
    """``run_row`` of every run folder in or under ``folders`` (each searched 3 levels deep)."""
    return [run_row(run.root) for folder in folders for run in find_runs(folder)]
