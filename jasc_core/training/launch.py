"""``jasc run --nproc N``: torchrun starts N processes on this machine, each running the same ``jasc run`` command.

The launcher is torchrun itself (``torch.distributed.run``: ``--standalone`` rendezvous on a free local port,
``--nproc-per-node N``, each worker ``python -m jasc_core.cli run ...``), called in this process rather than as a
child so that a failed worker arrives as data (``ChildFailedError.failures``) and the user reads one line naming the
rank, its exit code or signal and the resume command, instead of torchrun's failure table. When any worker dies,
torchrun stops the others; the run folder keeps the last complete epoch (``last.pt`` is replaced atomically, by the
main process only). Several machines: start torchrun by hand (docs/distributed.md).

Stopping signals (Ctrl-C, SIGTERM, SIGHUP, SIGUSR1; ``jasc_core.training.signals``): torchrun's agent, here, forwards
each to the workers (``--signals-to-handle`` adds SIGUSR1 to its default list), which stop after the same step with
a checkpoint; this process then says how to resume and exits with 128 + the signal's number. Its own signal handlers
are restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

from jasc_core.errors import ConfigError, RunError, RunInterrupted
from jasc_core.recipes.model import load_recipe
from jasc_core.runs.folder import default_run_name, new_run_dir
from jasc_core.training.signals import STOP_SIGNAL_NAMES, STOP_SIGNALS, signal_name

#: Set by ``launch_run`` in its workers' environment: the process count, so that the launcher (not rank 0) prints
#: the resume command of a stopped run, with ``--nproc``.
NPROC_VARIABLE = "JASC_NPROC"
#: The signals torchrun's agent handles and forwards to the workers: its defaults and SIGUSR1 (Slurm's warning).
FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1")


def worker_args(recipe: Path | None, sets: Sequence[str], out: Path | None, resume: Path | None,
                require_real: bool) -> list[str]:
    """The ``jasc`` arguments every worker runs (the user's ``jasc run`` without ``--nproc``)."""
    args = ["run"] + ([str(recipe)] if recipe is not None else [])
    for item in sets:
        args += ["--set", item]
    if out is not None:
        args += ["--out", str(out)]
    if resume is not None:
        args += ["--resume", str(resume)]
    return args + (["--require-real"] if require_real else [])


def torchrun_args(nproc: int, jasc_args: Sequence[str], module: str = "jasc_core.cli") -> list[str]:
    """torchrun's command line for ``nproc`` workers on this machine running ``python -m MODULE JASC_ARGS``."""
    forwarded = ",".join(name for name in FORWARDED_SIGNALS if hasattr(signal, name))
    return ["--standalone", f"--nproc-per-node={nproc}", f"--signals-to-handle={forwarded}", "--module", module,
            *jasc_args]


def resume_command(run_dir: Path | str, nproc: int | None = None) -> str:
    """The command that continues a run folder (with ``--nproc`` when it trained with several processes)."""
    return f"jasc run --resume {run_dir}" + (f" --nproc {nproc}" if nproc is not None and nproc > 1 else "")


def interrupted_error(signum: int, run_dir: Path | str | None, nproc: int | None = None) -> RunInterrupted:
    """The one line a stopped run ends with: which signal, how to continue; exit code 128 + the signal's number."""
    text = f"interrupted by {signal_name(signum)}"
    if run_dir is not None:
        text += f"; continue with: {resume_command(run_dir, nproc)}"
    return RunInterrupted(text, 128 + signum)


def stop_signal_of(exitcodes: Sequence[int]) -> int | None:
    """The stopping signal every failed worker exited for (exit code 128 + its number), else None."""
    signums = {code - 128 for code in exitcodes}
    if len(signums) == 1 and next(iter(signums)) in {int(s) for s in STOP_SIGNALS}:
        return next(iter(signums))
    return None


def failure_message(rank: int, exitcode: int, pid: int, run_dir: Path | None, nproc: int) -> str:
    """One line for a failed worker: which rank, how it ended, how to continue."""
    if exitcode < 0:
        try:
            how = f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    line = f"rank {rank} (pid {pid}) {how}; torchrun stopped the other processes"
    if run_dir is not None and (run_dir / "checkpoints" / "last.pt").is_file():
        line += f"; continue with: jasc run --resume {run_dir} --nproc {nproc}"
    return line


def launch_run(nproc: int, recipe: Path | None, sets: Sequence[str], out: Path | None, resume: Path | None,
               require_real: bool, module: str = "jasc_core.cli") -> Path | None:
    """Train with ``nproc`` processes, each ``python -m MODULE run ...`` (the jasc CLI; tests give a module that
    registers their components first); returns the run folder."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise ConfigError(f"--nproc: {nproc} processes; give 1 or more")
    if resume is None and out is None and recipe is not None:
        # Chosen here, not by the main worker, so that a failure message can name the folder to resume.
        loaded = load_recipe(recipe, list(sets))
        out = new_run_dir(loaded.output.dir, loaded.output.name or default_run_name(recipe))
    run_dir = resume if resume is not None else out
    args = parse_args(torchrun_args(nproc, worker_args(recipe, sets, out, resume, require_real), module))
    try:
        with _restored_handlers(), _environment(NPROC_VARIABLE, str(nproc)):
            run(args)
    except SignalException as exc:  # this process got it; torchrun forwarded it and waited for the workers
        raise interrupted_error(int(exc.sigval), run_dir, nproc) from None
    except ChildFailedError as exc:
        stopped = stop_signal_of([failure.exitcode for failure in exc.failures.values()])
        if stopped is not None:  # the workers got a stopping signal (a scheduler signals every process)
            raise interrupted_error(stopped, run_dir, nproc) from None
        rank, failure = exc.get_first_failure()
        raise RunError(failure_message(rank, failure.exitcode, failure.pid, run_dir, nproc)) from None
    return run_dir


@contextlib.contextmanager
def _restored_handlers() -> Iterator[None]:
    """torchrun's agent installs its own handlers and leaves them; put back the ones this process had."""
    names = {*STOP_SIGNAL_NAMES, "SIGQUIT"}
    previous = {sig: signal.getsignal(sig) for name in names if hasattr(signal, name)
                for sig in [getattr(signal, name)]}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):  # off the main thread; a handler set from C
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
