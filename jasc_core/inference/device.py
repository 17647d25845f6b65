"""Devices and autocast for running a pipeline (training's runtime builds on these)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from jasc_core.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: '{name}' requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


def autocast_for(device: torch.device, enabled: bool) -> Any:
    """bf16 autocast on CUDA when ``train.amp``; a no-op elsewhere (CPU precision is the speed issue's subject)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()
