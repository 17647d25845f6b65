"""``jasc run --nproc N``: torchrun starts N processes on this machine, each running the same ``jasc run`` command.

The launcher is torchrun itself (``torch.distributed.run``: ``--standalone`` rendezvous on a free local port,
``--nproc-per-node N``, each worker ``python -m jasc_core.cli run ...``), called in this process rather than as a
child so that a failed worker arrives as data (``ChildFailedError.failures``) and the user reads one line naming the
rank, its exit code or signal and the resume command, instead of torchrun's failure table. When any worker dies,
torchrun stops the others; the run folder keeps the last complete epoch (``last.pt`` is replaced atomically, by the
main process only). Several machines: start torchrun by hand (docs/distributed.md).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path

from jasc_core.errors import ConfigError, RunError
from jasc_core.recipes.model import load_recipe
from jasc_core.runs.folder import default_run_name, new_run_dir


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
    return ["--standalone", f"--nproc-per-node={nproc}", "--module", module, *jasc_args]


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
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise ConfigError(f"--nproc: {nproc} processes; give 1 or more")
    if resume is None and out is None and recipe is not None:
        # Chosen here, not by the main worker, so that a failure message can name the folder to resume.
        loaded = load_recipe(recipe, list(sets))
        out = new_run_dir(loaded.output.dir, loaded.output.name or default_run_name(recipe))
    run_dir = resume if resume is not None else out
    try:
        run(parse_args(torchrun_args(nproc, worker_args(recipe, sets, out, resume, require_real), module)))
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        raise RunError(failure_message(rank, failure.exitcode, failure.pid, run_dir, nproc)) from None
    return run_dir
