"""Stopping signals: Ctrl-C (SIGINT), SIGTERM, SIGHUP and SIGUSR1 end a run at a step boundary, the same way.

What Slurm, Kubernetes and systemd send at preemption or a time limit (SIGTERM; SIGUSR1 with ``sbatch --signal``),
a closed terminal (SIGHUP) and Ctrl-C take one path. During training (``StopSignals.deferred``) the first signal is
only recorded: the loop finishes its optimiser step, every process learns of it at the next step boundary (one
small all-reduce per step, so all ranks stop after the same step even when the signal reached them at different
moments), the main process writes a checkpoint of that step and marks ``run.json`` ``interrupted`` with the
signal's name, and the run raises ``Stopped``; the CLI prints the resume command and exits with 128 + the signal's
number. Outside training (data preparation, evaluation) the first signal raises ``Stopped`` at once, as Ctrl-C does.

A second signal while stopping ends the process at once (``os._exit(128 + signal)``): the user or the scheduler has
decided not to wait for the checkpoint. Under torchrun the launcher forwards each signal it gets to its workers, and
a scheduler that signals every process of a job then delivers the same signal twice; a repeat of the first signal
within ``DUPLICATE_WINDOW_S`` therefore counts as the same request there.

Handlers are installed for the duration of a run and the previous ones restored afterwards (``jasc_core`` may run
inside another program); off the main thread, where Python cannot install handlers, nothing is changed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType

#: Signals that stop a run, by name (those this platform has: Windows lacks SIGHUP and SIGUSR1).
STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1")
STOP_SIGNALS = tuple(getattr(signal, name) for name in STOP_SIGNAL_NAMES if hasattr(signal, name))
#: Under torchrun, a repeat of the first signal within this many seconds is the launcher's forwarded copy.
DUPLICATE_WINDOW_S = 2.0


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 99`` for a number this platform does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Stopped(KeyboardInterrupt):
    """A run ended by a stopping signal. A ``KeyboardInterrupt`` (as Ctrl-C always raised), so ``except Exception``
    in a caller does not swallow it. ``signum``: the signal; ``run_dir``: the run folder, once known."""

    def __init__(self, signum: int, run_dir: str | Path | None = None) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum
        self.run_dir = run_dir

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process ended by this signal: 128 + its number (143 for SIGTERM)."""
        return 128 + self.signum


class StopSignals:
    """The stopping-signal handlers of one run (a context manager); ``signum`` is the first signal received."""

    def __init__(self, duplicate_window: float = 0.0) -> None:
        self.signum: int | None = None
        self.duplicate_window = duplicate_window
        self._received_at = 0.0
        self._deferring = False
        self._previous: dict[int, signal.Handlers | Callable[[int, FrameType | None], object] | int | None] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The handler: record the first signal (raise ``Stopped`` unless deferring); a second one ends the process."""
        now = time.monotonic()
        if self.signum is None:
            self.signum, self._received_at = signum, now
            if not self._deferring:
                raise Stopped(signum)
            return
        if signum == self.signum and now - self._received_at < self.duplicate_window:
            return  # the launcher's forwarded copy of the signal this process already got
        os._exit(128 + signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Within: a signal is only recorded, for the loop to act on at its next step boundary (``pending``)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
