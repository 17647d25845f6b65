"""Checkpoints written atomically, and the random-number-generator state that makes a resumed run exact.

A checkpoint is written through ``jasc_core.runs.atomic_files.atomic_write``: a temporary file in the destination folder,
fsync'ed, then moved over the destination with ``os.replace``. A process killed at any moment leaves either the
previous file or the new one, never a truncated one.

Everything stored is plain containers, numbers, strings and tensors, so checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jasc_core.errors import RunError
from jasc_core.runs.atomic_files import atomic_write


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` to ``path`` atomically, with the user's umask (see ``atomic_files``)."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        try:
            torch.save(state, handle)
        except RuntimeError as exc:
            # torch's zip writer reports a failed write (a full disk) as a RuntimeError raised while handling the
            # OSError; give the caller the OSError, naming the file.
            if isinstance(exc.__context__, OSError):
                raise OSError(exc.__context__.errno, exc.__context__.strerror, str(path)) from exc
            raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_atomic`` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunError(f"checkpoint {path} cannot be loaded: {type(exc).__name__}: {exc}") from None


def rng_state(data_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Python, numpy, torch (CPU and CUDA) and data-order generator states, as weights-only-loadable data."""
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if data_generator is not None:
        state["data"] = data_generator.get_state()
    return state


def restore_rng_state(state: dict[str, Any], data_generator: torch.Generator | None = None) -> None:
    """Undo ``rng_state``: every generator continues exactly where it was saved."""
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if data_generator is not None and "data" in state:
        data_generator.set_state(state["data"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
