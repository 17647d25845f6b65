"""What a sweep runs: a grid of overrides times seeds, each run one ``jasc run`` command with its own run folder.

The plan is the same whatever the launcher, so a sweep started locally can be resumed on Ray or Slurm: the launcher
is not part of ``sweep.json``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from jasc_core.contract.json_types import JSONObject, JSONValue
from jasc_core.errors import ConfigError, RunError
from jasc_core.recipes.files import parse_set

PLAN_FILE = "sweep.json"
#: Environment variables of the driver that every run gets too (the data and cache homes), also on remote workers.
FORWARDED_ENV_PREFIXES = ("JASC_",)


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a configuration (grid values) and a seed."""

    config: tuple[tuple[str, JSONValue], ...]
    seed: int

    @property
    def config_label(self) -> str:
        return ",".join(f"{path}={_short(value)}" for path, value in self.config) or "base"

    @property
    def label(self) -> str:
        return _safe(f"{self.config_label}__seed{self.seed}")

    def sets(self) -> list[str]:
        return [f"{path}={_yaml_scalar(value)}" for path, value in self.config] + [f"seed={self.seed}"]


@dataclass(frozen=True)
class RunCommand:
    """One ``jasc run`` as a launcher executes it: plain data, so that it pickles to a Ray or Slurm worker.

    ``args`` follow ``python -m``; the worker prepends its own interpreter (a remote node's Python lives elsewhere).
    ``run_dir`` and ``log`` are absolute paths on a filesystem the workers share with the driver.
    """

    label: str
    args: tuple[str, ...]
    run_dir: str
    log: str
    threads: int
    env: tuple[tuple[str, str], ...] = ()


def jasc_run_command(
    recipe_path: Path, sets: Sequence[str], run_dir: Path, log: Path, threads: int, label: str,
    module: Sequence[str] = ("jasc_core.cli", "run"),
) -> RunCommand:
    """``jasc run RECIPE --set ... --out RUN_DIR``, or ``--resume RUN_DIR`` when the folder holds a checkpoint.

    A folder that was started but never checkpointed holds nothing to continue: it is removed so that ``--out`` can
    create it again.
    """
    run_dir, log = Path(run_dir).resolve(), Path(log).resolve()
    args = ["-m", *module, str(Path(recipe_path).resolve())]
    for expression in sets:
        args += ["--set", expression]
    if (run_dir / "checkpoints" / "last.pt").is_file():
        args += ["--resume", str(run_dir)]
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        args += ["--out", str(run_dir)]
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)))
    return RunCommand(label, tuple(args), str(run_dir), str(log), threads, env)


def parse_grid(expressions: Sequence[str]) -> list[tuple[str, list[JSONValue]]]:
    """``["weighting.alpha=0.001,0.01"]`` -> ``[("weighting.alpha", [0.001, 0.01])]`` (values parsed as YAML)."""
    axes = []
    for expression in expressions:
        path, sep, values = expression.partition("=")
        if not sep or not path.strip() or not values.strip():
            raise ConfigError(f"--grid {expression}: expected PATH=V1,V2,..., e.g. weighting.alpha=0.001,0.01")
        parsed = [parse_set(f"{path}={value.strip()}")[1] for value in values.split(",")]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"--grid {expression}: a value is repeated")
        axes.append((path.strip(), parsed))
    paths = [path for path, _ in axes]
    if len(set(paths)) != len(paths):
        raise ConfigError(f"--grid: the same path twice ({', '.join(paths)})")
    return axes


def plan_runs(axes: Sequence[tuple[str, list[JSONValue]]], seeds: int) -> list[SweepRun]:
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: need at least one seed")
    configs = list(itertools.product(*[[(path, value) for value in values] for path, values in axes]))
    # Seed-major order: a sweep stopped part-way has covered the whole grid with its first seeds.
    return [SweepRun(tuple(config), seed) for seed in range(seeds) for config in configs]


def write_or_check_plan(out: Path, plan: JSONObject, what: str = "sweep", file: str = PLAN_FILE) -> None:
    """Write the plan into a new folder, or check that a resumed folder holds this same plan."""
    path = out / file
    if path.exists():
        old = json.loads(path.read_text())
        if old != plan:
            raise RunError(f"{out} holds a different {what} ({path}); choose another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2))


def finished(run_dir: Path) -> bool:
    """A run folder whose run finished training and evaluation."""
    return run_status(run_dir) == "finished" and (run_dir / "metrics.json").is_file()


def run_status(run_dir: Path) -> str | None:
    """``status`` of a run folder's run.json (running, interrupted, failed, finished, pruned), or None."""
    try:
        return json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _short(value: JSONValue) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _yaml_scalar(value: JSONValue) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._=,-+" else "_" for c in label)
