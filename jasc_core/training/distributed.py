"""The distributed runtime: one process per GPU (or CPU share), started by torchrun, training one run with DDP.

torchrun (``torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in
every worker's environment; ``make_runtime`` sees them and builds a ``DistributedRuntime``: the process group
(``nccl`` on CUDA with device ``cuda:LOCAL_RANK``, ``gloo`` on the CPU), the model wrapped in
``DistributedDataParallel`` (batch norm synchronised over processes with ``train.sync_batchnorm``), and the small
collectives the loop asks the runtime for, so that every process takes the same optimiser step as one process
would on the global batch:

- ``share_losses``: each task's loss value becomes the clip-weighted mean over every process's clips (what one
  process computes on the global batch), and its gradient is scaled by ``n_r * W / N`` (this process's clips,
  processes, all clips), so DDP's average of gradients is that mean's gradient even when processes hold different
  numbers of a task's clips. Stateful weightings (DWA, uncertainty, GradNorm) therefore see the same numbers on
  every process.
- ``average``: per-task gradients (GradNorm, PCGrad) averaged before the scheme combines them.
- ``average_gradients``: the step's gradients, averaged once after backward (see ``wrap`` for why DDP's own
  reduction is switched off with ``no_sync``), and those of weighting parameters, which DDP does not own.
- ``sync_buffers``: after each step every process takes the main process's buffers (batch-norm statistics of the
  model and of schedules' extra models, e.g. an EMA teacher), unless batch norm is synchronised anyway.
- ``gather``/``shard_loaders``: each process scores a contiguous share of every validation loader; the scores are
  joined in split order, so metrics and model selection see the whole split.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from jasc_core.contract.batch import Batch
from jasc_core.errors import ConfigError
from jasc_core.inference.scoring import SplitScores, join_rows
from jasc_core.model.device import resolve_device
from jasc_core.training.runtime import Runtime
from jasc_core.training.sync_batchnorm import convert_sync_batchnorm

T = TypeVar("T")

_DDP_OPTIONS = inspect.signature(DistributedDataParallel.__init__).parameters
#: The variables torchrun sets in every worker's environment.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def under_torchrun() -> bool:
    """True in a worker started by torchrun (``jasc run --nproc``, or torchrun by hand)."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def make_runtime(device: str = "auto", precision: str = "fp32", sync_batchnorm: bool = False) -> Runtime:
    """The distributed runtime under torchrun, else the one-process runtime."""
    if under_torchrun():
        return DistributedRuntime(device, precision, sync_batchnorm)
    return Runtime(device, precision)


def share_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of process ``rank``'s contiguous share of ``n`` items: sizes differ by at most one, the
    lower ranks taking the extra ones (``numpy.array_split``'s rule)."""
    size, extra = divmod(n, world_size)
    start = rank * size + min(rank, extra)
    return start, start + size + (1 if rank < extra else 0)


class DistributedRuntime(Runtime):
    """One torchrun worker: a process group, DDP, and the collectives listed in the module docstring."""

    def __init__(self, device: str = "auto", precision: str = "fp32", sync_batchnorm: bool = False) -> None:
        self.local_rank = int(os.environ["LOCAL_RANK"])
        wanted = resolve_device(device)
        if wanted.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise ConfigError(f"train.device: local rank {self.local_rank} has no GPU (this machine has "
                                  f"{torch.cuda.device_count()}); start at most one process per GPU")
            wanted = torch.device("cuda", self.local_rank)  # one GPU per process, whatever cuda:N the recipe names
            torch.cuda.set_device(wanted)
        super().__init__(str(wanted), precision)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.sync_batchnorm = sync_batchnorm
        self._split_order: list[str] | None = None

    # model and data ------------------------------------------------------------------------------------------------

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.sync_batchnorm:
            module = convert_sync_batchnorm(module, self.device)
        # DDP checks every process holds the same parameters and broadcasts the main process's state. Its own
        # gradient reduction (in backward hooks) is not used: it needs every output of a forward to reach the loss,
        # which HardMTL's idle head, a batch without a task's labels, several forwards per step (003's disjoint
        # streams) and per-task gradients all break. Steps run under ``no_sync`` and ``average_gradients``
        # all-reduces the gradients once per step instead (one flattened all-reduce).
        # Buffers: once per step in ``sync_buffers``, not at every forward (torch >= 2.13 names the switch anew).
        no_forward_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _DDP_OPTIONS
                           else {"broadcast_buffers": False})
        return DistributedDataParallel(
            module, device_ids=[self.device.index] if self.device.type == "cuda" else None, **no_forward_sync)

    def shard(self, items: Sequence[T]) -> Sequence[T]:
        start, stop = share_bounds(len(items), self.rank, self.world_size)
        if start == stop and items:
            # A global batch smaller than the process count: the process repeats one clip (DistributedSampler pads
            # the same way), since every process must take part in the step.
            return items[self.rank % len(items):][:1]
        return items[start:stop]

    def shard_loaders(self, loaders: list[DataLoader[Batch]]) -> list[DataLoader[Batch]]:
        self._split_order = [loader.dataset.dataset.clips[i].clip_id for loader in loaders
                             for i in loader.dataset.indices]
        sharded = []
        for loader in loaders:
            subset = loader.dataset
            start, stop = share_bounds(len(subset.indices), self.rank, self.world_size)
            sharded.append(torch.utils.data.DataLoader(
                torch.utils.data.Subset(subset.dataset, list(subset.indices)[start:stop]),
                batch_size=loader.batch_size, shuffle=False, num_workers=loader.num_workers,
                collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, generator=loader.generator,
                persistent_workers=loader.persistent_workers,
            ))
        return sharded

    def gather(self, value: T) -> T:
        """Every process's ``SplitScores`` joined in split order (the loop gathers nothing else)."""
        parts: list[object] = [None] * self.world_size
        dist.all_gather_object(parts, value)
        return join_scores(parts, self._split_order)  # type: ignore[return-value]

    # writes ----------------------------------------------------------------------------------------------------------

    def main_only(self, write: Callable[[], T]) -> T | None:
        result = write() if self.is_main else None
        dist.barrier()  # nobody reads what the main process writes before it is written
        return result

    def from_main(self, read: Callable[[], T]) -> T:
        box = [read() if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    # collectives of a step -------------------------------------------------------------------------------------------

    def share_losses(self, losses: Mapping[str, tuple[Tensor, int]], tasks: Sequence[str]) -> dict[str, Tensor]:
        totals = torch.zeros(2 * len(tasks), dtype=torch.float64, device=self.device)
        for i, task in enumerate(tasks):
            if task in losses:
                loss, n = losses[task]
                totals[2 * i], totals[2 * i + 1] = float(loss.detach()) * n, n
        dist.all_reduce(totals)
        shared = {}
        for i, task in enumerate(tasks):
            clips = float(totals[2 * i + 1])
            if clips == 0:
                continue  # no process has a clip labelled for it: absent, as in one process
            loss, n = losses.get(task, (torch.zeros((), device=self.device), 0))
            term = loss * (n * self.world_size / clips)
            mean = (totals[2 * i] / clips).to(loss.dtype)
            shared[task] = term - term.detach() + mean  # value: the global mean; gradient: the scaled local one
        return shared

    def average(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        if not tensors:
            return []
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        return [part.view_as(t) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors, strict=True)]

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        params = list(params)
        if not params:
            return
        # A parameter may have a gradient on some processes only (a head without clips here): it is averaged with
        # zeros there; one without a gradient anywhere keeps none, as in one process (the optimiser skips it).
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=self.device)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        kept = [p for p, flag in zip(params, has.tolist(), strict=True) if flag]
        grads = self.average([p.grad if p.grad is not None else torch.zeros_like(p) for p in kept])
        for param, grad in zip(kept, grads, strict=True):
            param.grad = grad.to(param.dtype)

    def sync_buffers(self, modules: Iterable[nn.Module]) -> None:
        if self.sync_batchnorm:
            return  # synchronised batch norm keeps the statistics equal already
        # One broadcast per dtype (float statistics, integer counters) rather than one per buffer: this runs every step.
        by_dtype: dict[torch.dtype, list[Tensor]] = {}
        for module in modules:
            for buffer in module.buffers():
                by_dtype.setdefault(buffer.dtype, []).append(buffer)
        for buffers in by_dtype.values():
            flat = torch.cat([b.reshape(-1) for b in buffers])
            dist.broadcast(flat, src=0)
            for buffer, part in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
                buffer.copy_(part.view_as(buffer))

    def epoch_means(self, sums: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
        parts: list[object] = [None] * self.world_size
        dist.all_gather_object(parts, (dict(sums), dict(counts)))
        total: dict[str, float] = {}
        number: dict[str, int] = {}
        for part_sums, part_counts in parts:
            for name, value in part_sums.items():
                total[name] = total.get(name, 0.0) + value
                number[name] = number.get(name, 0) + part_counts[name]
        return {name: total[name] / number[name] for name in total}  # the main process's names first

    def all_gather(self, value: T) -> list[T]:
        parts: list[object] = [None] * self.world_size
        dist.all_gather_object(parts, value)
        return parts

    def max_over_processes(self, values: Sequence[int]) -> list[int]:
        flags = torch.tensor(list(values), dtype=torch.int64, device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return [int(v) for v in flags.tolist()]

    def gradient_sync(self, wrapped: nn.Module) -> AbstractContextManager[object]:
        return wrapped.no_sync() if isinstance(wrapped, DistributedDataParallel) else nullcontext()


def join_scores(parts: Sequence[SplitScores], order: Sequence[str] | None) -> SplitScores:
    """Validation scores of several processes as one split's, rows in ``order`` (clip ids; None: process order)."""
    ids = [clip for part in parts for clip in part.clip_ids]
    position = {clip: i for i, clip in enumerate(ids)}
    rows = np.array([position[clip] for clip in order] if order is not None else range(len(ids)), dtype=np.int64)
    durations = [d for part in parts for d in part.durations]
    joined = SplitScores(clip_ids=[ids[i] for i in rows], hop_seconds=max(p.hop_seconds for p in parts),
                         durations=[durations[i] for i in rows], stand_in=parts[0].stand_in)
    # In the order the parts list them (a set's order would follow the hash seed, differing between processes).
    for task in dict.fromkeys(task for part in parts for task in part.probs):
        present = [p for p in parts if task in p.probs]
        for name in ("probs", "targets", "labelled"):
            arrays = [getattr(p, name)[task] for p in present]
            getattr(joined, name)[task] = join_rows(arrays)[rows]
    counts: dict[str, int] = {}
    for part in parts:
        for task, n in part.loss_counts.items():
            counts[task] = counts.get(task, 0) + n
            joined.losses[task] = joined.losses.get(task, 0.0) + part.losses[task] * n
    joined.losses = {task: total / counts[task] for task, total in joined.losses.items()}
    joined.loss_counts = counts
    return joined

