"""Random-number-generator state that makes a resumed run exact, and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state(data_generator: torch.Generator | None = None) -> dict[str, object]:
    """Python, numpy, torch (CPU and CUDA) and data-order generator states, as weights-only-loadable data."""
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, object] = {
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


def restore_rng_state(state: dict[str, object], data_generator: torch.Generator | None = None) -> None:
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
