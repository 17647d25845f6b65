"""Data streams: the training split's clips grouped by the labels they carry and their length, each read in shuffled
passes with its own batch size.

A clip's label kind joins what it is labelled with for the model's tasks (``scene``, ``strong``, ``weak``,
``scene+strong``, or ``unlabelled``); clips of one kind and one length form a stream (``strong@10s`` when a kind
comes in several lengths). So 1-s scene clips and 10-s event clips of a disjoint dataset never share a batch.

Each stream is read in passes: a pass is a permutation of its clips drawn by ``torch.utils.data.RandomSampler`` from
the stream's own generator, cut into batches (the last one short). A stream that runs out starts a new pass, as
samplers of unequal datasets do. Its position is the generator state at the start of the current pass plus the
clips consumed, so a resumed run continues every stream exactly where it was. With one stream seeded by the
recipe's seed, the order is the one a shuffled ``DataLoader`` gives.

With several processes (``jasc_core.training.distributed``) every process draws the same permutation from the same
generator and cuts it into global batches of ``world_size`` x the batch size; process ``r`` reads the ``r``-th
contiguous share of each (``Runtime.shard``). So two processes with batch size B read exactly the clips one
process reads with 2B, ``StreamInfo.batch_size`` is the global size, and a stream's position stays global: a run
resumed with another number of processes continues the same permutation, only cut into other shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from jasc_core.contract.context import StreamInfo
from jasc_core.contract.data import Clip, ClipList
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.data.clips import ClipDataset
from jasc_core.errors import ConfigError


def label_kind(clip: Clip, tasks: Sequence[str]) -> str:
    kinds = [kind for task in tasks if (kind := TASK_DESCRIPTIONS[task].label_kind(clip)) is not None]
    return "+".join(kinds) if kinds else "unlabelled"


def group_streams(clips: ClipList, tasks: Sequence[str]) -> dict[str, tuple[frozenset[str], float, list[int]]]:
    """Stream name -> (tasks labelled, clip seconds, clip indices in split order)."""
    groups: dict[tuple[str, float], list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault((label_kind(clip, tasks), round(clip.duration, 6)), []).append(i)
    lengths: dict[str, int] = {}
    for kind, _ in groups:
        lengths[kind] = lengths.get(kind, 0) + 1
    streams = {}
    for (kind, seconds), indices in sorted(groups.items()):
        name = kind if lengths[kind] == 1 else f"{kind}@{seconds:g}s"
        labelled = frozenset(t for t in tasks if TASK_DESCRIPTIONS[t].label_kind(clips[indices[0]]) is not None)
        streams[name] = (labelled, seconds, indices)
    return streams


def _whole(batch: list[int]) -> list[int]:
    return batch


class _PassSampler(torch.utils.data.Sampler):
    """This process's share (``shard``) of each global batch of one pass over a stream, after the first ``skip``
    clips of the pass (resume)."""

    def __init__(self, indices: Sequence[int], batch_size: int, generator: torch.Generator,
                 shard: Callable[[list[int]], Sequence[int]] = _whole) -> None:
        self.indices = list(indices)
        self.batch_size = batch_size
        self.generator = generator
        self.shard = shard
        self.skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        sampler = torch.utils.data.RandomSampler(range(len(self.indices)), generator=self.generator)
        order = [self.indices[i] for i in sampler]
        for start in range(self.skip, len(order), self.batch_size):
            yield list(self.shard(order[start:start + self.batch_size]))

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)


def _items(items: list[dict[str, object]]) -> list[dict[str, object]]:
    return items  # batches are collated per step, after the streams of one batch are joined


class StreamReader:
    """Reads one stream batch by batch, pass after pass; ``state()``/``restore()`` give its exact position."""

    def __init__(self, info: StreamInfo, data: ClipDataset, indices: Sequence[int], *, seed: int, num_workers: int,
                 pin_memory: bool = False, shard: Callable[[list[int]], Sequence[int]] = _whole) -> None:
        self.info = info
        self.generator = torch.Generator().manual_seed(seed)
        self.sampler = _PassSampler(indices, info.batch_size, self.generator, shard)
        self.loader = torch.utils.data.DataLoader(
            data, batch_sampler=self.sampler, generator=self.generator, num_workers=num_workers,
            collate_fn=_items, pin_memory=pin_memory, persistent_workers=num_workers > 0,
        )
        self.pass_start = self.generator.get_state()
        #: Clips of the current pass read so far by all processes: a position that holds for any global batch size
        #: (a run resumed with another number of processes).
        self.consumed = 0
        self._batches: Iterator[list[dict[str, object]]] | None = None

    def next(self) -> list[dict[str, object]]:
        """The items of the stream's next batch (a new pass starts when one runs out)."""
        for _ in range(2):
            if self._batches is None:
                self.pass_start = self.generator.get_state()
                self.sampler.skip = self.consumed
                self._batches = iter(self.loader)
            try:
                items = next(self._batches)
            except StopIteration:
                self._batches, self.consumed = None, 0
                continue
            self.consumed += min(self.info.batch_size, self.info.n_clips - self.consumed)
            return items
        raise RuntimeError(f"stream '{self.info.name}' yields no batch")  # only for an empty stream

    def state(self) -> dict[str, object]:
        return {"pass_start": self.pass_start, "consumed_clips": self.consumed}

    def restore(self, state: Mapping[str, object]) -> None:
        self.generator.set_state(state["pass_start"])
        # Checkpoints written before positions were counted in clips hold batches of this size ("consumed").
        self.consumed = int(state["consumed_clips"] if "consumed_clips" in state
                            else int(state["consumed"]) * self.info.batch_size)
        self._batches = None


def build_streams(
    data: ClipDataset, tasks: Sequence[str], *, batch_size: int, batch_sizes: Mapping[str, int], seed: int,
    num_workers: int, pin_memory: bool = False, world_size: int = 1,
    shard: Callable[[list[int]], Sequence[int]] = _whole, keep: Sequence[str] | None = None,
) -> dict[str, StreamReader]:
    """A reader per stream of the training split; stream ``k`` (in name order) draws from seed ``seed + k``.

    Batch sizes are per process; a stream's global batch (``StreamInfo.batch_size``) is ``world_size`` times that,
    of which this process reads ``shard(batch)``.

    ``keep`` (``train.streams``): only the streams named there, by name (``strong@10s``) or label kind (``strong``).
    Seeds are drawn before the filter, so a kept stream reads the same clips as it does in a run that keeps all.
    """
    groups = group_streams(data.clips, tasks)
    kinds = {name.split("@")[0] for name in groups}
    for field, keys in (("train.streams", keep or ()), ("train.stream_batch_sizes", batch_sizes)):
        unknown = sorted(key for key in keys if key not in groups and key not in kinds)
        if unknown:
            raise ConfigError(f"{field}: no stream {', '.join(map(repr, unknown))} in this training split; "
                              f"streams: {', '.join(groups)}")
    readers: dict[str, StreamReader] = {}
    for k, (name, (labelled, seconds, indices)) in enumerate(groups.items()):
        if keep is not None and name not in keep and name.split("@")[0] not in keep:
            continue
        # A stream's own name first (strong@10s), then its label kind (strong) for every length of that kind.
        size = batch_sizes.get(name, batch_sizes.get(name.split("@")[0], batch_size))
        info = StreamInfo(name, labelled, seconds, len(indices), int(size) * world_size)
        readers[name] = StreamReader(info, data, indices, seed=seed + k, num_workers=num_workers,
                                     pin_memory=pin_memory, shard=shard)
    # Each stream's loader has workers of its own (started on first read, after this): they share the memory cache.
    data.worker_pools = max(1, len(readers)) if num_workers > 0 else 1
    return readers
