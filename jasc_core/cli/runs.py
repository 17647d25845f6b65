"""``jasc runs`` (run folders and their status), and how ``jasc run`` and ``jasc evaluate`` speak of a run's state:
a stopped run's exit, a run that is still training or whose process is gone (``jasc_core.runs.liveness``)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jasc_core.console import output_console
from jasc_core.errors import RunInterrupted

console = output_console()


def runs_command(
    folders: Annotated[list[Path] | None, typer.Argument(help="Run folders, or folders holding them (searched 3 "
                                                         "levels deep); default: runs/.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List run folders with their status; a run whose process is gone reads as 'interrupted: process gone'."""
    from jasc_core.runs.listing import run_rows

    rows = run_rows(folders or [Path("runs")])
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="jasc runs", title_justify="left")
    for column in ("run", "status", "epochs", "best", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["run"], row["status"], str(row["epochs"] if row["epochs"] is not None else "-"),
                      row["best"] or "-", row["detail"])
    console.print(table)


def run_state_note(run_dir: Path) -> str:
    """A line for ``jasc evaluate`` when the run is not done training: still alive, or interrupted ('' if done)."""
    from jasc_core.runs.folder import open_run
    from jasc_core.runs.liveness import liveness

    state = liveness(open_run(run_dir).read_meta())
    if state.alive:
        return f"note: {run_dir} is still training ({state.detail}); evaluating the best checkpoint written so far"
    if state.status in ("finished", "trained"):
        return ""
    detail = f" ({state.detail})" if state.detail else ""
    return (f"note: {run_dir}: {state.status}{detail}; evaluating the best checkpoint it left (continue it with: "
            f"jasc run --resume {run_dir})")


def interrupted_exit(exc: KeyboardInterrupt) -> Exception:
    """What a stopped ``jasc run`` raises: the resume command and exit code 128 + the signal's number. A torchrun
    worker of rank > 0, or any worker of ``jasc run --nproc`` (whose launcher prints the line, with --nproc), only
    exits with that code."""
    from jasc_core.training.distributed import under_torchrun
    from jasc_core.training.launch import NPROC_VARIABLE, interrupted_error
    from jasc_core.training.runtime import is_main_process
    from jasc_core.training.signals import signal_name

    signum = getattr(exc, "signum", signal.SIGINT)
    run_dir = getattr(exc, "run_dir", None)
    if not is_main_process() or os.environ.get(NPROC_VARIABLE):
        return typer.Exit(128 + signum)
    if under_torchrun() and run_dir is not None:  # torchrun started by hand: its own command line, with --resume
        return RunInterrupted(f"interrupted by {signal_name(signum)}; continue with your torchrun command, giving "
                              f"'run --resume {run_dir}' to jasc", 128 + signum)
    return interrupted_error(signum, run_dir)
