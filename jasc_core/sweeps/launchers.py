"""Where a sweep's runs execute: local processes, Ray tasks, or Slurm jobs through submitit.

Every launcher executes the same thing, a ``RunCommand`` (``python -m jasc_core.cli run ... --out RUN_DIR``), with
``execute`` on whichever machine gets it, so the run folders, and hence resume and the summary, do not depend on the
launcher. Ray and Slurm workers must see the sweep folder at the same path as the driver (a shared filesystem) and
have jasc installed. A launcher keeps at most ``jobs`` runs in flight; a run that fails (or whose worker dies) is
returned with its error line, and the others go on.
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jasc_core.contract.json_types import JSONObject, JSONValue
from jasc_core.errors import ConfigError, RunError
from jasc_core.sweeps.plan import RunCommand

LAUNCHERS = ("local", "ray", "slurm")


class LauncherConfig(BaseModel):
    """The ``launcher:`` block of a launcher file (``--launcher-file``); command-line flags override its fields."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["local", "ray", "slurm"] = Field("local", description="local processes, Ray tasks or Slurm jobs")
    address: str | None = Field(None, description="ray: a running cluster (auto, ray://host:10001); none: start a "
                                "local one for the sweep")
    cpus_per_run: float = Field(1.0, gt=0, description="ray, slurm: CPUs reserved for each run (also its threads)")
    gpus_per_run: float = Field(0.0, ge=0, description="ray, slurm: GPUs reserved for each run")
    partition: str | None = Field(None, description="slurm: partition")
    time_min: int = Field(60, ge=1, description="slurm: time limit of each run's job in minutes")
    setup: list[str] = Field(default_factory=list, description="slurm: shell lines run before each job (module "
                             "load, source a venv)")
    slurm_parameters: dict[str, Any] = Field(default_factory=dict, description="slurm: further sbatch options "
                                             "(submitit's slurm_additional_parameters), e.g. {account: x, qos: y}")
    cluster: Literal["slurm", "local", "debug"] | None = Field(None, description="slurm: submitit's executor; "
                                                               "local runs the jobs here (tests, CI)")
    poll_s: float = Field(5.0, gt=0, description="slurm: seconds between job-state checks")


def load_launcher_config(path: Path | None, **flags: JSONValue) -> LauncherConfig:
    """The ``launcher:`` block of ``path`` (if given) with every flag that is not None on top."""
    block: JSONObject = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"--launcher-file {path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("launcher", {}), dict):
            raise ConfigError(f"--launcher-file {path}: expected a 'launcher:' mapping")
        block = dict(data.get("launcher") or {})
    block.update({key: value for key, value in flags.items() if value is not None})
    try:
        return LauncherConfig(**block)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"launcher.{where}: {first['msg']}" + (f" ({path})" if path else "")) from None


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or fail with the one line that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"--launcher {extra} needs {module}, an optional extra: pip install -e \".[{extra}]\"") from None


def execute(command: RunCommand) -> str:
    """Run one command on this machine (the driver, a Ray worker, a Slurm node): '' on success, else the last line
    of its log (the error jasc printed)."""
    threads = str(command.threads)
    env = {**os.environ, **dict(command.env), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    log = Path(command.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        result = subprocess.run([sys.executable, *command.args], stdout=handle, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {result.returncode}"
    return ""


class Launcher(ABC):
    """Runs commands, at most ``jobs`` at a time; ``next_done`` blocks until one ends."""

    name = "local"

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self.waiting: list[RunCommand] = []

    def submit(self, commands: Sequence[RunCommand]) -> None:
        self.waiting.extend(commands)
        self._start_waiting()

    @property
    def pending(self) -> int:
        """Commands submitted and not yet returned by ``next_done``."""
        return len(self.waiting) + self._in_flight()

    def next_done(self) -> tuple[RunCommand, str]:
        """The next command to end and its error line ('' on success)."""
        if not self.pending:
            raise RunError("next_done: nothing was submitted")
        done = self._wait_one()
        self._start_waiting()
        return done

    def _start_waiting(self) -> None:
        free = self.jobs - self._in_flight()
        if free > 0 and self.waiting:
            batch, self.waiting = self.waiting[:free], self.waiting[free:]
            self._start(batch)

    @abstractmethod
    def _start(self, commands: list[RunCommand]) -> None: ...

    @abstractmethod
    def _in_flight(self) -> int: ...

    @abstractmethod
    def _wait_one(self) -> tuple[RunCommand, str]: ...

    @abstractmethod
    def close(self) -> None:
        """Release what the launcher started (threads, a local Ray instance)."""

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalLauncher(Launcher):
    """``jobs`` ``jasc run`` processes at a time on this machine."""

    name = "local"

    def __init__(self, jobs: int) -> None:
        super().__init__(jobs)
        self.pool = ThreadPoolExecutor(max_workers=self.jobs)
        self.futures: dict[Future, RunCommand] = {}

    def _start(self, commands: list[RunCommand]) -> None:
        for command in commands:
            self.futures[self.pool.submit(execute, command)] = command

    def _in_flight(self) -> int:
        return len(self.futures)

    def _wait_one(self) -> tuple[RunCommand, str]:
        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        future = next(iter(done))
        command = self.futures.pop(future)
        try:
            return command, future.result()
        except OSError as exc:  # the log or the interpreter could not be opened: this run fails, the rest go on
            return command, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class RayLauncher(Launcher):
    """Each run a Ray task (``cpus_per_run`` CPUs, ``gpus_per_run`` GPUs) on a running cluster (``address``), or on
    a local Ray instance started for the sweep with ``jobs x cpus_per_run`` CPUs and stopped after it."""

    name = "ray"

    def __init__(self, jobs: int, config: LauncherConfig, ray: ModuleType | None = None) -> None:
        super().__init__(jobs)
        self.ray = ray or require("ray", "ray")
        self.started = not self.ray.is_initialized()
        if self.started:
            if config.address:
                self.ray.init(address=config.address, log_to_driver=False)
            else:
                self.ray.init(num_cpus=max(1, math.ceil(self.jobs * config.cpus_per_run)),
                              num_gpus=math.ceil(self.jobs * config.gpus_per_run), include_dashboard=False,
                              log_to_driver=False)
        # No retries: a run that failed is reported; the next invocation of the sweep resumes it.
        self.remote = self.ray.remote(num_cpus=config.cpus_per_run, num_gpus=config.gpus_per_run,
                                      max_retries=0)(execute)
        self.refs: dict[object, RunCommand] = {}  # ray's ObjectRef of each run

    def _start(self, commands: list[RunCommand]) -> None:
        for command in commands:
            self.refs[self.remote.remote(command)] = command

    def _in_flight(self) -> int:
        return len(self.refs)

    def _wait_one(self) -> tuple[RunCommand, str]:
        ready, _ = self.ray.wait(list(self.refs), num_returns=1)
        command = self.refs.pop(ready[0])
        try:
            return command, self.ray.get(ready[0])
        except Exception as exc:  # the task raised or its worker died: this run fails, the rest go on
            return command, f"ray: {type(exc).__name__}: {_first_line(exc)}"

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


class SlurmLauncher(Launcher):
    """Runs as Slurm jobs through submitit: one job array per submission (``slurm_array_parallelism`` = ``jobs``);
    submitit's job files and logs go to ``folder`` (``<job id>_<index>_log.out``). With ``cluster: local`` the jobs run on this machine (tests, CI), at most
    ``jobs`` at a time."""

    name = "slurm"

    def __init__(self, jobs: int, config: LauncherConfig, folder: Path, submitit: ModuleType | None = None) -> None:
        super().__init__(jobs)
        self.submitit = submitit or require("submitit", "slurm")
        self.executor = self.submitit.AutoExecutor(folder=str(Path(folder).resolve()), cluster=config.cluster)
        self.executor.update_parameters(
            name="jasc", timeout_min=config.time_min, cpus_per_task=max(1, math.ceil(config.cpus_per_run)),
            gpus_per_node=math.ceil(config.gpus_per_run), slurm_partition=config.partition,
            slurm_array_parallelism=self.jobs, slurm_setup=list(config.setup),
            slurm_additional_parameters=dict(config.slurm_parameters),
        )
        if self.executor.cluster == "slurm":  # Slurm itself caps the array's parallelism: submit everything at once
            self.jobs = sys.maxsize
        self.poll_s = config.poll_s if self.executor.cluster == "slurm" else min(config.poll_s, 0.5)
        self.running: list[tuple[object, RunCommand]] = []  # submitit's Job of each run

    def _start(self, commands: list[RunCommand]) -> None:
        with self.executor.batch():
            jobs = [self.executor.submit(execute, command) for command in commands]
        self.running += list(zip(jobs, commands, strict=True))

    def _in_flight(self) -> int:
        return len(self.running)

    def _wait_one(self) -> tuple[RunCommand, str]:
        while True:
            for index, (job, command) in enumerate(self.running):
                if job.done():
                    del self.running[index]
                    try:
                        return command, job.result()
                    except Exception as exc:  # killed at its time limit, node failure: its submitit log says why
                        return command, f"slurm job {job.job_id}: {type(exc).__name__}: {_first_line(exc)}"
            time.sleep(self.poll_s)

    def close(self) -> None:
        # Jobs already queued keep running when the driver stops: they write their run folders, and the same
        # command later collects them (finished) or resumes them.
        self.running.clear()


def check_available(config: LauncherConfig) -> None:
    """Fail in the first second, before any folder is written, when the launcher's extra is not installed."""
    if config.name == "ray":
        require("ray", "ray")
    elif config.name == "slurm":
        require("submitit", "slurm")


def make_launcher(config: LauncherConfig, jobs: int, folder: Path) -> Launcher:
    """The launcher ``config.name`` names; ``folder`` (the sweep's) keeps submitit's job logs."""
    if config.name == "ray":
        return RayLauncher(jobs, config)
    if config.name == "slurm":
        return SlurmLauncher(jobs, config, folder / "slurm")
    return LocalLauncher(jobs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
