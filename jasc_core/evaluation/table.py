"""Tables of evaluation metrics, laid out like 001 Table IV (then the DCASE metrics): on the console and as Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from jasc_core.console import output_console
from jasc_core.contract.json_types import JSONMapping
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.evaluation.devices import device_table_lines

if TYPE_CHECKING:
    from rich.console import Console


def _pct(value: object) -> str:
    return "-" if value is None else f"{100 * float(value):.2f}%"


def table_iv_columns() -> list[tuple[str, str, str]]:
    """(task, metric key, column title) of the paper table: each task's micro-F and macro-F (001 Table IV)."""
    return [
        (task, key, f"{task.capitalize()} {title}")
        for task, description in TASK_DESCRIPTIONS.items()
        for key, title in zip(description.validation_metrics[:2], ("micro-F", "macro-F"), strict=True)
    ]


def table_iv_row(metrics: JSONMapping) -> list[str]:
    """Each task's micro-F and macro-F (scene accuracy and macro-F; event frame level), '-' for a missing task."""
    return [_pct(metrics.get(task, {}).get(key)) for task, key, _ in table_iv_columns()]


def dcase_row(event: JSONMapping) -> list[str]:
    segment, collar = event.get("segment_f1", {}), event.get("collar_f1", {})
    return [
        _pct(segment.get("micro")), _pct(segment.get("macro")), _pct(collar.get("micro")), _pct(collar.get("macro")),
        "-" if event.get("psds1") is None else f"{event['psds1']:.3f}",
        "-" if event.get("psds2") is None else f"{event['psds2']:.3f}",
    ]


#: Rows of the PSDS-by-post-processing table: (key suffix, title).
POSTPROCESS_ROWS = (("raw", "raw scores"), ("median", "median filter"), ("sebb", "SEBB"))
POSTPROCESS_TITLE = "PSDS by post-processing (docs/task4.md)"


def postprocess_rows(event: JSONMapping) -> list[list[str]]:
    """``[title, PSDS1, PSDS2]`` of each post-processing with values (``postprocess_metrics``); empty without."""
    def value(key: str) -> str:
        return "-" if event.get(key) is None else f"{event[key]:.3f}"

    rows = [[title, value(f"psds1_{suffix}"), value(f"psds2_{suffix}")] for suffix, title in POSTPROCESS_ROWS
            if f"psds1_{suffix}" in event or f"psds2_{suffix}" in event]
    if event.get("median_filter_source") == "median_filters.json":
        rows = [[f"{row[0]} (tuned)" if row[0] == "median filter" else row[0], *row[1:]] for row in rows]
    return rows


DCASE_COLUMNS = ("Segment-F1 micro", "Segment-F1 macro", "Collar-F1 micro", "Collar-F1 macro", "PSDS1", "PSDS2")
DCASE_TITLE = "DCASE event metrics (sed_scores_eval; segments 1 s, collar 200 ms / 20 %)"


def _frame_task_metrics(metrics: JSONMapping) -> JSONMapping:
    """The metrics of the frame-level task (the one DCASE event metrics are computed for), or {}."""
    return next((metrics[task] for task, d in TASK_DESCRIPTIONS.items() if d.frame_level and task in metrics), {})


def _title(metrics: JSONMapping) -> str:
    return f"Scene classification and event detection ({metrics.get('split', '')}, {metrics.get('n_clips', '?')} clips)"


def print_tables(method: str, metrics: JSONMapping, console: Console | None = None) -> None:
    from rich.table import Table

    console = console or output_console()
    table = Table(title=_title(metrics))
    table.add_column("Method")
    for _, _, column in table_iv_columns():
        table.add_column(column, justify="right")
    table.add_row(method, *table_iv_row(metrics))
    console.print(table)
    event = _frame_task_metrics(metrics)
    if "collar_f1" in event or "segment_f1" in event:
        dcase = Table(title=DCASE_TITLE)
        dcase.add_column("Method")
        for column in DCASE_COLUMNS:
            dcase.add_column(column, justify="right")
        dcase.add_row(method, *dcase_row(event))
        console.print(dcase)
        footnote = psds_footnote(event)
        if footnote:
            console.print(footnote, markup=False, highlight=False)
    if postprocess_rows(event):
        post = Table(title=POSTPROCESS_TITLE)
        for column in ("Scores", "PSDS1", "PSDS2"):
            post.add_column(column, justify="left" if column == "Scores" else "right")
        for row in postprocess_rows(event):
            post.add_row(*row)
        console.print(post)
    for task, values in metrics.items():
        per_device = values.get("per_device") if isinstance(values, Mapping) else None
        if per_device:
            devices = Table(title=f"{task.capitalize()} accuracy per recording device")
            for device in per_device:
                devices.add_column(device, justify="right")
            devices.add_row(*(f"{_pct(v['accuracy'])} ({v['n_clips']})" for v in per_device.values()))
            console.print(devices)
    if metrics.get("data_stand_in"):
        console.print(f"Data: {metrics['data_stand_in']}: the numbers above are not a reproduction of a paper's result.",
                      markup=False, highlight=False)


def markdown_tables(method: str, metrics: JSONMapping) -> str:
    """The same tables as Markdown, for the run folder (``tables_<split>.md``)."""
    columns = [column for _, _, column in table_iv_columns()]
    lines = [f"## {_title(metrics)}", "", "| Method | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|", f"| {method} | " + " | ".join(table_iv_row(metrics)) + " |"]
    event = _frame_task_metrics(metrics)
    if "collar_f1" in event or "segment_f1" in event:
        lines += ["", f"## {DCASE_TITLE}", "", "| Method | " + " | ".join(DCASE_COLUMNS) + " |",
                  "|---" * (len(DCASE_COLUMNS) + 1) + "|", f"| {method} | " + " | ".join(dcase_row(event)) + " |"]
        footnote = psds_footnote(event)
        if footnote:
            lines += ["", *(f"{line.strip()}" for line in footnote.splitlines())]
    if postprocess_rows(event):
        lines += ["", f"## {POSTPROCESS_TITLE}", "", "| Scores | PSDS1 | PSDS2 |", "|---|---|---|",
                  *(f"| {' | '.join(row)} |" for row in postprocess_rows(event))]
    lines += device_table_lines(metrics)
    if metrics.get("data_stand_in"):
        lines += ["", f"**Data: {metrics['data_stand_in']}**: the numbers above are not a reproduction of a paper's result."]
    return "\n".join(lines) + "\n"


def psds_footnote(event: JSONMapping) -> str | None:
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
