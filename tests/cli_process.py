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


def run_jasc(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``jasc ARGS`` with stdout and stderr captured (so stdout is not a terminal); ``env`` is added to os.environ."""
    environ = os.environ | {"OMP_NUM_THREADS": "1"} | (env or {})
    return subprocess.run([*jasc_command(), *args], capture_output=True, text=True, env=environ, timeout=300,
                          **kwargs)
