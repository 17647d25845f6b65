"""Collect every run folder under a claims output folder (tools/claims_sweeps.sh) into one JSON document on stdout:
per run its sweep, recipe overrides, status, steps per task (run.json), the evaluation metrics (metrics.json, the EMA
teacher's too) and the per-epoch validation history (learning curves)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect(root: Path) -> dict[str, list[dict[str, object]]]:
    sweeps: dict[str, list[dict[str, object]]] = {}
    for run in sorted(root.glob("*/runs/*/")):
        meta = read(run / "run.json") or {}
        history = read(run / "history.json") or []
        sweeps.setdefault(run.parent.parent.name, []).append({
            "run": run.name, "status": meta.get("status"), "steps": meta.get("steps"),
            "train_seconds": sum(r.get("time", 0.0) for r in history),
            "metrics": read(run / "metrics.json"),
            "history": [{"epoch": r["epoch"], "step": r["step"], "phase": r.get("phase"), "val": r.get("val"),
                         "train_losses": r.get("train_losses"), "extra_losses": r.get("extra_losses")}
                        for r in history],
        })
    return sweeps


if __name__ == "__main__":
    json.dump(collect(Path(sys.argv[1])), sys.stdout, indent=1)
