"""Is a run folder's process still alive? ``run.json`` keeps the main process's pid, host and a heartbeat.

While a run trains, its main process records ``pid``, ``host`` and ``heartbeat`` (a UTC time) in ``run.json`` and a
background thread renews the heartbeat every ``HEARTBEAT_EVERY_S`` (at most once a minute; an atomic rewrite of
``run.json``). A run whose ``status`` is ``running`` is

- ``alive`` when its heartbeat is younger than ``STALE_AFTER_S`` and, on its own host, its pid is a live process;
- ``gone`` otherwise: killed with SIGKILL, out of memory, its machine lost. Listings show it as
  ``interrupted: process gone``; ``jasc run --resume`` continues it like any interrupted run.

A run folder written before heartbeats existed has none and is never taken for a live run. A process on another
host can only be judged by its heartbeat, so a run killed there is refused by ``--resume`` for at most
``STALE_AFTER_S`` after its last heartbeat.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from jasc_core.contract.json_types import JSONMapping, JSONObject

#: How often the heartbeat is renewed.
HEARTBEAT_EVERY_S = 60.0
#: A running run whose heartbeat is older than this reads as gone (five missed heartbeats).
STALE_AFTER_S = 300.0


def host_name() -> str:
    return socket.gethostname()


def now_text() -> str:
    """The current UTC time as ``run.json`` keeps it: ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def process_fields() -> JSONObject:
    """``pid``, ``host`` and ``heartbeat`` of this process, for ``run.json``."""
    return {"pid": os.getpid(), "host": host_name(), "heartbeat": now_text()}


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by somebody else
        return True
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Liveness:
    """What a run folder's ``run.json`` says, checked against this machine: ``status`` as shown (``running``,
    ``interrupted: process gone``, or the stored status), ``alive`` (a live process is training it), ``detail``."""

    status: str
    alive: bool
    detail: str = ""


def liveness(meta: JSONMapping, *, now: float | None = None, stale_after: float = STALE_AFTER_S) -> Liveness:
    """The status of a run folder as a listing shows it (see the module docstring)."""
    status = str(meta.get("status", "unknown"))
    if status == "interrupted" and meta.get("signal"):
        return Liveness(f"interrupted ({meta['signal']})", False)
    if status != "running":
        return Liveness(status, False)
    pid, host, beat = meta.get("pid"), meta.get("host"), meta.get("heartbeat")
    if beat is None:
        return Liveness("running", False, "no heartbeat recorded (written by an older jasc)")
    try:
        age = (now if now is not None else time.time()) - datetime.fromisoformat(str(beat)).timestamp()
    except ValueError:
        return Liveness("interrupted: process gone", False, f"unreadable heartbeat {beat!r}")
    where = f"pid {pid} on {host}"
    if age > stale_after:
        return Liveness("interrupted: process gone", False, f"{where}: last heartbeat {age / 60:.0f} min ago")
    if host == host_name() and not (isinstance(pid, int) and pid_alive(pid)):
        return Liveness("interrupted: process gone", False, f"{where}: no such process")
    return Liveness("running", True, f"{where}, heartbeat {max(0.0, age):.0f} s ago")


class Heartbeat:
    """Renews ``heartbeat`` through ``write(**fields)`` every ``every`` seconds from a daemon thread (a context
    manager: records pid, host and heartbeat on entry, stops the thread on exit)."""

    def __init__(self, write: Callable[..., None], every: float = HEARTBEAT_EVERY_S) -> None:
        self.write, self.every = write, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jasc-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.write(**process_fields())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError, ValueError):  # a full disk now and then must not end the run
                self.write(heartbeat=now_text())


@contextlib.contextmanager
def heartbeat_if(enabled: bool, write: Callable[..., None], every: float = HEARTBEAT_EVERY_S) -> Iterator[None]:
    """``Heartbeat(write, every)`` on the main process, nothing on the others."""
    if not enabled:
        yield
        return
    with Heartbeat(write, every):
        yield
