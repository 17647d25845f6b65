"""Progress on the console: rich bars on an interactive terminal, one plain line per epoch elsewhere, and the time
to the end of training (said up front from the first steps when the run is long, then after every epoch)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

#: A run whose training steps alone are estimated at this many seconds or more is announced up front: a CPU run of
#: the papers' full-size recipes takes hours, and the user should learn that in the first minute, not the first hour.
LONG_RUN_SECONDS = 3600.0
#: Steps timed for the up-front estimate. The first step of a session is not among them: it pays one-off costs
#: (allocations, the first reads of the data, lazy initialisation) that the later steps do not.
TIMED_STEPS = 5


def duration_text(seconds: float) -> str:
    """``45 s``, ``12 min 5 s``, ``34 h 10 min``: a duration at the precision a person plans with."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class RunClock:
    """Estimates the time left in training from what this session has measured (no assumed speeds)."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.steps = 0
        self.first_step_end: float | None = None
        self.announced = False
        self.epoch_seconds: list[float] = []

    def step_done(self, steps_per_epoch: int, epochs_left: int) -> str | None:
        """Call after each training step; ``epochs_left`` counts the current epoch. Once ``TIMED_STEPS`` steps
        after the first are timed, returns the up-front estimate when it reaches ``LONG_RUN_SECONDS``."""
        self.steps += 1
        if self.announced or self.epoch_seconds:
            return None
        if self.steps == 1:
            self.first_step_end = self.now()
            return None
        if self.steps < 1 + TIMED_STEPS or self.first_step_end is None:
            return None
        self.announced = True
        per_step = (self.now() - self.first_step_end) / TIMED_STEPS
        per_epoch = per_step * steps_per_epoch
        total = per_epoch * epochs_left
        if total < LONG_RUN_SECONDS:
            return None
        return (f"a long run: {per_step:.2f} s per training step (steps 2-{1 + TIMED_STEPS} timed), so one epoch of "
                f"{steps_per_epoch} steps takes about {duration_text(per_epoch)} and the {epochs_left} epochs left "
                f"about {duration_text(total)}, validation not counted; the time left is printed after every epoch")

    def epoch_done(self, seconds: float, epochs_left: int) -> str:
        """Call after each epoch (``seconds`` with its validation); ``epochs_left`` after this one. The text to
        append to the epoch's line: the epochs left at the mean epoch time of this session."""
        self.epoch_seconds.append(seconds)
        if epochs_left <= 0:
            return ""
        left = sum(self.epoch_seconds) / len(self.epoch_seconds) * epochs_left
        end = (datetime.now() + timedelta(seconds=left)).strftime("%a %H:%M")
        return f" | {epochs_left} epochs left: about {duration_text(left)} (ends about {end}; sooner if it stops early)"


def show_progress() -> bool:
    """Rich progress bars only on an interactive terminal, never under pytest."""
    return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ


class Progress:
    """Bars (``enabled``) and console lines; with ``timed``, also the time left (``RunClock``)."""

    def __init__(self, enabled: bool, timed: bool = False) -> None:
        self.clock = RunClock() if timed else None
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

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def add(self, description: str, total: int) -> TaskID | None:
        return self.progress.add_task(description, total=total, info="") if self.progress is not None else None

    def update(self, task: TaskID | None, info: str) -> None:
        if self.progress is not None:
            self.progress.update(task, advance=1, info=info)

    def remove(self, task: TaskID | None) -> None:
        if self.progress is not None:
            self.progress.remove_task(task)

    def log(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False)
        elif "PYTEST_CURRENT_TEST" not in os.environ:
            # No terminal (a log file, CI): one plain line per epoch instead of bars.
            print(text, file=sys.stderr, flush=True)

    def step_done(self, steps_per_epoch: int, epochs_left: int) -> None:
        """After a training step: the up-front line of a long run, once."""
        line = self.clock.step_done(steps_per_epoch, epochs_left) if self.clock is not None else None
        if line is not None:
            self.log(line)

    def time_left(self, epoch_seconds: float, epochs_left: int) -> str:
        """After an epoch: the text that says how long the rest takes ("" when not timed or nothing is left)."""
        return self.clock.epoch_done(epoch_seconds, epochs_left) if self.clock is not None else ""
