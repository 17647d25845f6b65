"""Devices, numeric precision and autocast for running a pipeline (training's runtime builds on these).

``train.precision`` is ``fp32``, ``bf16`` or ``auto``. ``auto`` picks bf16 only where the hardware computes it
natively: a CUDA device with bf16 support (Ampere and later), or a CPU with AVX-512 BF16 or AMX (the flags
``avx512_bf16`` / ``amx_bf16`` of /proc/cpuinfo). Elsewhere bf16 is emulated and slower than fp32, so ``auto`` keeps
fp32. bf16 runs the model under ``torch.autocast`` (matmuls and convolutions in bf16, weights, optimiser state and
reductions in fp32); the feature extractor, the losses and the metrics stay in fp32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import cache
from pathlib import Path
from typing import Literal

import torch

from jasc_core.errors import ConfigError

Precision = Literal["fp32", "bf16", "auto"]

#: /proc/cpuinfo flags of CPUs that compute bf16 dot products natively.
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: '{name}' requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


@cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (empty where the file does not exist: macOS, Windows)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matmuls natively (see the module docstring)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``device``: ``auto`` as the module docstring says, the others as they are."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"train.precision: '{precision}' is not one of fp32, bf16, auto")
    if precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.precision: bf16 autocast is supported on cpu and cuda, not on {device.type}")
    return precision


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """bf16 autocast for ``precision`` ``bf16``; a no-op for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()
