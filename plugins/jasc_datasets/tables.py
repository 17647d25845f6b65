"""Tab-separated annotation tables (joint, TAU, DESED formats): header checks and per-line problems.

Readers collect every problem with its ``file:line`` instead of stopping at the first, so that ``jasc data info``
can list them all; loaders then raise the first as a ``DataError`` (see ``raise_problems``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from jasc_core import DataError


class Problems(list):
    """Messages, each naming a file (and line), found while reading a dataset."""

    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def raise_problems(problems: Iterable[str]) -> None:
    """Raise the first problem as a ``DataError`` (with a count of the others), if there is any."""
    problems = list(problems)
    if problems:
        more = ""
        if len(problems) > 1:
            more = f" (and {len(problems) - 1} more problem(s); `jasc data info` lists them all)"
        raise DataError(problems[0] + more)


def read_table(
    path: str, required: tuple[str, ...], problems: Problems, header: bool = True
) -> list[tuple[int, dict[str, str]]]:
    """Rows of a tab-separated file as ``(line number, {column: value})``.

    A missing file or a header without one of the ``required`` columns is a problem and gives no rows. Blank lines
    are skipped. With ``header=False`` the columns are ``required`` in order.
    """
    if not os.path.isfile(path):
        problems.add(path, "annotation file not found")
        return []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(path, f"cannot read annotation file ({exc})")
        return []
    rows: list[tuple[int, dict[str, str]]] = []
    start = 0
    columns = list(required)
    if header:
        while start < len(lines) and not lines[start].strip():
            start += 1
        if start == len(lines):
            problems.add(path, "annotation file is empty (no header line)")
            return []
        columns = [c.strip() for c in lines[start].split("\t")]
        missing = [c for c in required if c not in columns]
        if missing:
            problems.add(
                f"{path}:{start + 1}",
                f"header lacks column(s) {', '.join(repr(c) for c in missing)}; expected tab-separated "
                f"{' '.join(required)}, found {columns}",
            )
            return []
        start += 1
    for index in range(start, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        values = line.split("\t")
        if len(values) < len(columns):
            # Trailing empty fields are often stripped by editors: pad them rather than fail the row.
            values += [""] * (len(columns) - len(values))
        if len(values) > len(columns):
            problems.add(f"{path}:{index + 1}", f"{len(values)} tab-separated fields, header has {len(columns)}")
            continue
        rows.append((index + 1, {c: v.strip() for c, v in zip(columns, values, strict=True)}))
    return rows


def parse_time(text: str, where: str, column: str, problems: Problems) -> float | None:
    """A time in seconds, or ``None`` (problem noted) when it is not a finite non-negative number."""
    try:
        value = float(text)
    except ValueError:
        problems.add(where, f"{column} {text!r} is not a number")
        return None
    if not math.isfinite(value) or value < 0:
        problems.add(where, f"{column} {text!r} is not a finite time >= 0")
        return None
    return value


def check_label(label: str, vocabulary: list[str] | None, kind: str, where: str, problems: Problems) -> bool:
    """Whether ``label`` is in ``vocabulary`` (always true without one); notes a problem otherwise."""
    if vocabulary is None or label in vocabulary:
        return True
    problems.add(where, f"unknown {kind} label {label!r}; known: {', '.join(vocabulary)}")
    return False
