"""Run folders as a listing shows them (``jasc runs``): status checked for a live process, epochs, best value."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jasc_core.runs.folder import RunFolder, find_runs, read_json
from jasc_core.runs.liveness import liveness


def run_row(root: Path) -> dict[str, Any]:
    """One run folder's line: ``run``, ``status`` (``interrupted: process gone`` for a dead ``running`` run),
    ``epochs`` trained (from history.json), ``best`` (metric=value at epoch) and ``detail``."""
    run = RunFolder(Path(root))
    try:
        meta = run.read_meta()
    except (OSError, ValueError) as exc:
        return {"run": str(root), "status": "unreadable", "epochs": None, "best": "", "detail": str(exc)}
    state = liveness(meta)
    try:
        epochs: int | None = len(read_json(run.history))
    except (OSError, ValueError):
        epochs = meta.get("epochs_trained")
    best = meta.get("best") or {}
    best_text = (f"{best.get('metric')}={best['value']:.4f} (epoch {best.get('epoch')})"
                 if isinstance(best.get("value"), int | float) else "")
    detail = state.detail or str(meta.get("error") or "")
    return {"run": str(root), "status": state.status, "alive": state.alive, "epochs": epochs, "best": best_text,
            "detail": detail}


def run_rows(folders: Iterable[Path]) -> list[dict[str, Any]]:
    """``run_row`` of every run folder in or under ``folders`` (each searched 3 levels deep)."""
    return [run_row(run.root) for folder in folders for run in find_runs(folder)]
