"""The runtime: the one object the loop asks about device, precision, processes and writes.

Lightning Fabric's idea, kept small: the loop receives built parts and never checks a device type, a rank or a
precision itself. This runtime runs one process; the distributed runtime (``jasc_core.training.distributed``, DDP under torchrun)
replaces ``wrap``, ``gather``, ``rank``/``world_size`` and the small collectives below (each a no-op here) without a
new branch in the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from jasc_core.contract.batch import Batch
from jasc_core.model.device import autocast_for, resolve_device, resolve_precision

T = TypeVar("T")


def is_main_process() -> bool:
    """True unless this is a torchrun worker of rank > 0 (which print and write nothing); ``Runtime.is_main`` says
    the same of a built runtime."""
    return int(os.environ.get("RANK", "0")) == 0


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

    def any_process(self, flag: bool) -> bool:
        """True when ``flag`` is True on any process; every process must call it (``max_over_processes``)."""
        return bool(self.max_over_processes([int(flag)])[0])

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> AbstractContextManager[object]:
        return autocast_for(self.device, self.precision)

    def to_device(self, batch: Batch) -> Batch:
        return batch.to(self.device)

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module the forward pass goes through (DDP wraps it; one process uses it as it is)."""
        return module

    def gather(self, value: T) -> T:
        """Validation scores of every process joined in split order (one process: the value itself)."""
        return value

    def shard_loaders(self, loaders: list[DataLoader[Batch]]) -> list[DataLoader[Batch]]:
        """The validation loaders over this process's share of their clips (one process: all of them)."""
        return loaders

    def main_only(self, write: Callable[[], T]) -> T | None:
        """Run ``write`` on the main process only (run-folder writes); the others wait until it is written."""
        return write() if self.is_main else None

    def from_main(self, read: Callable[[], T]) -> T:
        """``read()`` on the main process, its result on every process (a checkpoint, the run folder's path)."""
        return read()

    def close(self) -> None:
        """Leave the process group at the end of a run (one process: nothing to leave)."""

    # Collectives of one optimiser step and one epoch (no-ops for one process). -------------------------------------

    def shard(self, items: Sequence[T]) -> Sequence[T]:
        """This process's contiguous share of ``items`` (a global batch, a validation split's clips)."""
        return items

    def share_losses(self, losses: Mapping[str, tuple[Tensor, int]], tasks: Sequence[str]) -> dict[str, Tensor]:
        """Task losses (each this process's clip-weighted mean over ``n`` clips) as the clip-weighted mean over every
        process's clips, with gradients scaled so that averaging them over processes gives that mean's gradient."""
        return {task: loss for task, (loss, _) in losses.items()}

    def average(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        """The element-wise mean of ``tensors`` over processes (per-task gradients of GradNorm and PCGrad)."""
        return list(tensors)

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Average ``.grad`` of ``params`` over processes (after a step's backward; weighting parameters)."""

    def sync_buffers(self, modules: Iterable[nn.Module]) -> None:
        """Give every process the main process's buffers (batch-norm statistics; an EMA teacher's)."""

    def epoch_means(self, sums: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
        """Per-name means of values summed over an epoch's steps, over every process's steps."""
        return {name: sums[name] / counts[name] for name in sums}

    def all_gather(self, value: T) -> list[T]:
        """Every process's ``value`` (picklable), in rank order (a mid-epoch checkpoint's loss sums)."""
        return [value]

    def max_over_processes(self, values: Sequence[int]) -> list[int]:
        """The element-wise maximum of small integers over processes (a stop signal, a checkpoint decision)."""
        return list(values)

    def gradient_sync(self, wrapped: nn.Module) -> AbstractContextManager[object]:
        """Context of one step's forwards and backward (DDP: ``no_sync``; gradients are averaged after backward)."""
        return nullcontext()


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` for the duration of a run (restored afterwards)."""
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    previous_workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    # cuBLAS needs this set before its first use to be deterministic; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.benchmark = previous_benchmark
        if previous_workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
