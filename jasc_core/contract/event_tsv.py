"""The DCASE event TSV, the one format every event table jasc writes uses.

Header ``filename onset offset event_label`` (tab-separated), one row per event, times in seconds with three
decimals (milliseconds: the DCASE convention, and a fixed resolution whatever the file's length); a table of
predictions may add each event's peak ``score`` (six decimals) as a fifth column. Lines end in ``\\n``. The
evaluation's ``<split>_events.tsv`` (``jasc_core.evaluation.events``) and ``jasc predict``'s ``events.tsv``
(``jasc_core.inference.outputs``) are both written by ``event_tsv``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The DCASE columns, in order.
EVENT_COLUMNS = ("filename", "onset", "offset", "event_label")
#: The column a table of predictions adds: the event's peak score.
SCORE_COLUMN = "score"

#: ``(filename, onset, offset, event_label)``.
EventRow = tuple[str, float, float, str]
#: ``(filename, onset, offset, event_label, score)``.
ScoredEventRow = tuple[str, float, float, str, float]


def event_tsv(rows: Iterable[EventRow] | Iterable[ScoredEventRow], *, scored: bool = False) -> str:
    """The TSV text of ``rows``: the four DCASE columns, and ``score`` when ``scored`` (each row then has five)."""
    columns = (*EVENT_COLUMNS, SCORE_COLUMN) if scored else EVENT_COLUMNS
    lines = ["\t".join(columns)]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"event row {row!r}: expected {len(columns)} fields ({', '.join(columns)})")
        filename, onset, offset, label = row[:4]
        fields = [str(filename), f"{float(onset):.3f}", f"{float(offset):.3f}", str(label)]
        if scored:
            fields.append(f"{float(row[4]):.6f}")  # type: ignore[misc]
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"
