"""Errors a user can act on. The CLI prints their message on stderr, without a traceback, and exits with code 2."""

from __future__ import annotations


class JascError(Exception):
    """Base of every error whose message is meant for the user; exit code 2 in the CLI."""

    exit_code = 2


class ConfigError(JascError):
    """A recipe or component config is invalid; the message names the path and the problem."""


class PluginError(JascError):
    """A plugin could not be loaded or registered (duplicate name, broken import, unknown component)."""


class DataError(JascError):
    """A dataset, annotation or audio file is unusable; the message names the file (and line)."""


class RunError(JascError):
    """A run cannot start or continue (bad resume folder, NaN loss, ...)."""


class RunInterrupted(RunError):
    """A run stopped by Ctrl-C (SIGINT) or another stopping signal (SIGTERM, SIGHUP, SIGUSR1); the message says how to
    resume it. Exit code 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), as shells report it."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def os_error_message(exc: OSError) -> str:
    """One line naming the path and the OS reason: ``/ro/run: Read-only file system``."""
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason
