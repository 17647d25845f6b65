"""Files written atomically and with the permissions the user's umask asks for.

A file is written to a temporary file in the destination folder, flushed and fsync'ed, then moved over the
destination with ``os.replace`` (atomic on POSIX and Windows within one file system) and the folder is fsync'ed. A
process killed at any moment leaves either the previous file or the new one, never a truncated one.

``tempfile.mkstemp`` creates its file ``0o600`` whatever the umask (it is meant for private scratch files), so the
replaced file would be unreadable to colleagues on a shared machine; the temporary file is therefore given the mode
an ordinary ``open(path, "w")`` would have produced, ``0o666 & ~umask``, before it takes the destination's name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask: from ``/proc/self/status`` on Linux, else by setting it and setting it back at once.

    Setting it is racy with other threads creating files, hence Linux's read-only way first and the lock.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` less the umask's bits."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: object) -> Iterator[IO[str] | IO[bytes]]:
    """Open a temporary sibling of ``path`` for writing; on a clean exit it replaces ``path`` atomically.

    ``mode`` is ``"w"`` (text, pass ``encoding``) or ``"wb"``. On any exception the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(NotImplementedError):  # chmod is not supported everywhere (some Windows shares)
            os.chmod(tmp_name, default_file_mode())
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and exc.filename is None:
            # A write into the open file (a full disk) names no file: name the one being written.
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable; not possible on every platform (Windows), where it is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
