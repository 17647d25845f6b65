"""Progress on the console: rich bars on an interactive terminal, one plain line per epoch elsewhere."""

from __future__ import annotations

import os
import sys
from typing import Any


def show_progress() -> bool:
    """Rich progress bars only on an interactive terminal, never under pytest."""
    return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.progress = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), transient=True,
            )

    def __enter__(self) -> Progress:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def add(self, description: str, total: int) -> Any:
        return self.progress.add_task(description, total=total, info="") if self.progress is not None else None

    def update(self, task: Any, info: str) -> None:
        if self.progress is not None:
            self.progress.update(task, advance=1, info=info)

    def remove(self, task: Any) -> None:
        if self.progress is not None:
            self.progress.remove_task(task)

    def log(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False)
        elif "PYTEST_CURRENT_TEST" not in os.environ:
            # No terminal (a log file, CI): one plain line per epoch instead of bars.
            print(text, file=sys.stderr, flush=True)
