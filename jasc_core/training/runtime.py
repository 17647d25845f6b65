"""The runtime: the one object the loop asks about device, precision, processes and writes.

Lightning Fabric's idea, kept small: the loop receives built parts and never checks a device type, a rank or a
precision itself. This runtime runs one process; a distributed runtime (DDP) replaces ``wrap``, ``gather`` and
``rank``/``world_size`` without a new branch in the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn

from jasc_core.inference.clips import to_device
from jasc_core.inference.device import autocast_for, resolve_device, resolve_precision

T = TypeVar("T")


class Runtime:
    """Device, precision, rank and world size of a run; model wrapping, gathering and main-rank-only work."""

    def __init__(self, device: str = "auto", precision: str = "fp32") -> None:
        self.device = resolve_device(device)
        #: ``fp32`` or ``bf16``: the recipe's ``train.precision`` resolved for this device (``auto`` decided).
        self.precision = resolve_precision(precision, self.device)
        self.rank = 0
        self.world_size = 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes the run folder, checkpoints, plots and the console."""
        return self.rank == 0

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    @property
    def amp(self) -> bool:
        """Whether the model runs under bf16 autocast (``precision == "bf16"``)."""
        return self.precision == "bf16"

    def autocast(self) -> Any:
        return autocast_for(self.device, self.precision)

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return to_device(batch, self.device)

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module the forward pass goes through (DDP wraps it; one process uses it as it is)."""
        return module

    def gather(self, value: T) -> T:
        """Validation scores of every process joined (one process: the value itself)."""
        return value

    def main_only(self, write: Callable[[], T]) -> T | None:
        """Run ``write`` on the main process only (run-folder writes)."""
        return write() if self.is_main else None


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` for the duration of a run (restored afterwards)."""
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    # cuBLAS needs this set before its first use to be deterministic; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.benchmark = previous_benchmark
