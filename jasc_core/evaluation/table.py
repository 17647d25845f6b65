"""Rich tables of evaluation metrics, laid out like 001 Table IV (then the DCASE metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.2f}%"


def table_iv_row(metrics: Mapping[str, Any]) -> list[str]:
    """Scene micro-F, scene macro-F, event micro-F, event macro-F (frame level), '-' for a missing task."""
    scene, event = metrics.get("scene", {}), metrics.get("event", {})
    return [
        _pct(scene.get("accuracy")), _pct(scene.get("macro_f1")),
        _pct(event.get("frame_micro_f1")), _pct(event.get("frame_macro_f1")),
    ]


def print_tables(method: str, metrics: Mapping[str, Any], console: Any = None) -> None:
    from rich.table import Table

    from jasc_core.console import output_console

    console = console or output_console()
    split = metrics.get("split", "")
    table = Table(title=f"Scene classification and event detection ({split}, {metrics.get('n_clips', '?')} clips)")
    table.add_column("Method")
    for column in ("Scene micro-F", "Scene macro-F", "Event micro-F", "Event macro-F"):
        table.add_column(column, justify="right")
    table.add_row(method, *table_iv_row(metrics))
    console.print(table)
    event = metrics.get("event", {})
    if "collar_f1" in event or "segment_f1" in event:
        dcase = Table(title="DCASE event metrics (sed_scores_eval; segments 1 s, collar 200 ms / 20 %)")
        dcase.add_column("Method")
        for column in ("Segment-F1 micro", "Segment-F1 macro", "Collar-F1 micro", "Collar-F1 macro", "PSDS1", "PSDS2"):
            dcase.add_column(column, justify="right")
        segment, collar = event.get("segment_f1", {}), event.get("collar_f1", {})
        dcase.add_row(
            method, _pct(segment.get("micro")), _pct(segment.get("macro")), _pct(collar.get("micro")),
            _pct(collar.get("macro")),
            "-" if event.get("psds1") is None else f"{event['psds1']:.3f}",
            "-" if event.get("psds2") is None else f"{event['psds2']:.3f}",
        )
        console.print(dcase)
