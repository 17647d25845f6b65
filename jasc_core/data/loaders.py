"""From clip datasets to batches: collation into a ``Batch``, loaders over a split, worker counts.

``collate`` stacks items of one clip length into a ``jasc_core.contract.batch.Batch``. A clip without a label gets a
False mask entry for that target, and a target no clip of the batch has is absent (never zero-filled). Batches never
mix clip lengths: the training streams and ``split_loaders`` group clips by length first, and ``collate`` refuses a
mixed batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from jasc_core.contract.batch import Batch
from jasc_core.contract.data import ClipList
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.data.clips import ClipDataset
from jasc_core.errors import DataError


def worker_count(setting: int | str) -> int:
    """``train.num_workers`` as a number: ``auto`` is min(CPU cores - 1, 4), 0 on a single core (the main process
    then reads the data itself; a worker would only compete with it for the core)."""
    if setting != "auto":
        return int(setting)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(cores - 1, 4))


def collate(items: Sequence[dict[str, object]]) -> Batch:
    """Stack items of one clip length into a ``Batch`` (targets, masks and class masks keyed by output name)."""
    lengths = {len(item["waveform"]) for item in items}
    if len(lengths) > 1:
        raise DataError(
            f"a batch mixes clip lengths ({', '.join(str(n) for n in sorted(lengths))} samples); clips are grouped "
            "into streams of one length before batching"
        )
    n_frames = max(item["n_frames"] for item in items)
    batch = Batch(waveform=torch.stack([item["waveform"] for item in items]),
                  index=torch.tensor([item["index"] for item in items]),
                  clip_ids=[item["clip_id"] for item in items],
                  devices=[item.get("device") for item in items], datasets=[item.get("dataset") for item in items])
    for description in TASK_DESCRIPTIONS.values():
        targets, masks = description.collate(items, n_frames)
        batch.targets.update(targets)
        batch.masks.update(masks)
        batch.class_masks.update(description.collate_class_masks(items, targets))
    return batch


def by_length(clips: ClipList) -> list[list[int]]:
    """Clip indices grouped by clip duration (shortest first), each group in the split's order."""
    groups: dict[float, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault(round(clip.duration, 6), []).append(i)
    return [groups[key] for key in sorted(groups)]


def split_loaders(data: ClipDataset, batch_size: int, num_workers: int, pin_memory: bool = False, *,
                  persistent: bool = False) -> list[torch.utils.data.DataLoader[Batch]]:
    """Unshuffled loaders over a split, one per clip length (validation, evaluation, inference).

    Each has a generator of its own: a loader without one draws its worker seed from the global RNG, which would
    shift the dropout masks of training. ``persistent``: the workers live across passes (validation runs every epoch,
    and new workers would start with empty caches each time), and the memory cache is shared out over them.
    """
    groups = by_length(data.clips)
    if persistent and num_workers > 0:
        data.worker_pools = max(1, len(groups))
    return [
        torch.utils.data.DataLoader(
            torch.utils.data.Subset(data, indices), batch_size=batch_size, shuffle=False, num_workers=num_workers,
            collate_fn=collate, pin_memory=pin_memory, generator=torch.Generator().manual_seed(0),
            persistent_workers=persistent and num_workers > 0,
        )
        for indices in groups
    ]
