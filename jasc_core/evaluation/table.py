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
        footnote = psds_footnote(event)
        if footnote:
            console.print(footnote, markup=False, highlight=False)


def psds_footnote(event: Mapping[str, Any]) -> str | None:
    """Why PSDS can read 0.000 next to a good frame F1; None when no PSDS value or error is shown.

    PSDS (DCASE 2023 Task 4 settings, ``dcase.PSDS_SETTINGS``) is threshold-free and cross-class: its effective true
    positive rate is the mean over classes minus alpha_st = 1 times their standard deviation, so every class that is
    never detected lowers the mean and widens the spread, and with many such classes the area under the curve is 0.
    Frame F1 (micro) is dominated by the frequent classes and does not see this.
    """
    shown = [name for name in ("psds1", "psds2") if event.get(name) is not None or event.get(f"{name}_error")]
    if not shown:
        return None
    lines = ["PSDS: per-class ROC averaged minus 1 x the spread of the per-class true positive rates (alpha_st = 1), "
             "so classes that are never detected pull it towards 0 while frame F1, dominated by frequent classes, "
             "can stay high."]
    per_class = event.get("collar_f1", {}).get("per_class", {})
    if per_class:
        undetected = sum(1 for value in per_class.values() if value == 0)
        absent = len(event.get("classes_without_reference", []))
        lines.append(f"  Here {undetected} of the {len(per_class)} classes with reference events have collar-F1 0 at "
                     f"the decision threshold" + (f"; {absent} classes have no reference event in this split and are "
                                                  f"left out of PSDS." if absent else "."))
    for name in shown:
        if event.get(f"{name}_error"):
            lines.append(f"  {name.upper()} could not be computed: {event[f'{name}_error']}")
    return "\n".join(lines)
