"""Run the installed ``jasc`` console script in a child process, as a user's shell would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def jasc_command() -> list[str]:
    """The ``jasc`` script installed next to this interpreter (the venv's), else ``python -m jasc_core.cli``."""
    script = Path(sys.executable).with_name("jasc")
    if script.is_file():
        return [str(script)]
    found = shutil.which("jasc")
    return [found] if found else [sys.executable, "-m", "jasc_core.cli"]


def jasc_env(env: dict[str, str | None] | None = None) -> dict[str, str]:
    """os.environ with ``env`` on top; a None value removes the variable (e.g. the suite's COLUMNS)."""
    merged = os.environ | {"OMP_NUM_THREADS": "1"} | (env or {})
    return {key: value for key, value in merged.items() if value is not None}


def run_jasc(*args: str, env: dict[str, str | None] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``jasc ARGS`` with stdout and stderr captured (so stdout is not a terminal); ``env`` as for ``jasc_env``."""
    return subprocess.run([*jasc_command(), *args], capture_output=True, text=True, env=jasc_env(env), timeout=300,
                          **kwargs)
