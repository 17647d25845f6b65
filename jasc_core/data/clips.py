"""From a clip list to batches: waveforms plus targets and label masks per output name (task descriptions decide).

Each item is a dict with the clip's waveform and the targets its labels give (``TaskDescription.item_targets``);
``collate`` stacks items of one clip length into a batch. A clip without a label gets a False mask entry for that
target, and a target no clip of the batch has is absent (never zero-filled). Batches never mix clip lengths: the
training streams and ``split_loaders`` group clips by length first, and ``collate`` refuses a mixed batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jasc_core.contract.components import Dataset, FeatureExtractor
from jasc_core.contract.data import ClipList
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.data.audio_cache import AudioCache
from jasc_core.errors import DataError


class ClipDataset(torch.utils.data.Dataset):
    """A torch dataset over a ``ClipList``: each item is a dict with the waveform and the targets it has.

    ``labels`` are the vocabularies by task the targets index into. ``cache`` keeps decoded waveforms in memory after
    first use (small datasets, several epochs), up to ``cache_bytes`` in all; in a loader's worker processes each
    keeps its share (``cache_bytes / num_workers``), so memory stays bounded whatever the dataset's size.
    ``disk_cache`` (an ``AudioCache``) reads decoded, resampled clips from disk instead of decoding them again.
    """

    def __init__(
        self,
        clips: ClipList,
        source: Dataset,
        *,
        sample_rate: int,
        hop_seconds: float,
        n_frames_for: Any,
        labels: dict[str, list[str]] | None = None,
        cache: bool = False,
        cache_bytes: int | None = None,
        disk_cache: AudioCache | None = None,
    ) -> None:
        self.clips = clips
        self.source = source
        self.sample_rate = sample_rate
        self.hop_seconds = hop_seconds
        self.n_frames_for = n_frames_for
        # Default: every task's vocabulary as the clip list declares it.
        self.labels = labels if labels is not None else {t: d.vocabulary(clips) for t, d in TASK_DESCRIPTIONS.items()}
        self.cache = cache
        self.cache_bytes = cache_bytes
        self.disk_cache = disk_cache
        self._waveforms: dict[int, np.ndarray] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.clips)

    def waveform(self, index: int, keep: bool = True) -> np.ndarray:
        """The clip's waveform (memory cache, else disk cache, else decoded); ``keep``: may enter the memory cache."""
        if index in self._waveforms:
            return self._waveforms[index]
        clip = self.clips[index]
        audio = self.disk_cache.load(clip, self._decode) if self.disk_cache is not None else self._decode(clip)
        if keep and self.cache and self._fits(audio.nbytes):
            self._waveforms[index] = audio
            self._cached_bytes += audio.nbytes
        return audio

    def _fits(self, nbytes: int) -> bool:
        if self.cache_bytes is None:
            return True
        worker = torch.utils.data.get_worker_info()
        share = self.cache_bytes // (worker.num_workers if worker is not None else 1)
        return self._cached_bytes + nbytes <= share

    def _decode(self, clip: Any) -> np.ndarray:
        audio = np.asarray(self.source.audio(clip, self.sample_rate), dtype=np.float32)
        expected = round(clip.duration * self.sample_rate)
        if audio.ndim != 1 or len(audio) != expected:
            raise DataError(
                f"clip '{clip.clip_id}' ({clip.path}): audio() returned shape {audio.shape}, expected ({expected},) "
                f"= duration {clip.duration} s at {self.sample_rate} Hz"
            )
        return audio

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[index]
        audio = self.waveform(index)
        n_frames = int(self.n_frames_for(len(audio)))
        targets: dict[str, torch.Tensor] = {}
        for task, labels in self.labels.items():
            targets.update(TASK_DESCRIPTIONS[task].item_targets(clip, labels, n_frames, self.hop_seconds))
        return {"index": index, "clip_id": clip.clip_id, "waveform": torch.from_numpy(audio), "n_frames": n_frames,
                "targets": targets}


def clip_dataset(
    clips: ClipList, source: Dataset, features: FeatureExtractor, labels: dict[str, list[str]], cache: bool,
    cache_bytes: int | None = None, disk_cache_dir: str | Path | None = None,
) -> ClipDataset:
    """A ``ClipDataset`` at the feature extractor's sample rate and frame hop (``disk_cache_dir``: an ``AudioCache``
    there)."""
    sample_rate = int(features.sample_rate)
    disk = AudioCache(disk_cache_dir, source, sample_rate) if disk_cache_dir is not None else None
    return ClipDataset(clips, source, sample_rate=sample_rate, hop_seconds=float(features.hop_seconds),
                       n_frames_for=features.num_frames, labels=labels, cache=cache, cache_bytes=cache_bytes,
                       disk_cache=disk)


def worker_count(setting: int | str) -> int:
    """``train.num_workers`` as a number: ``auto`` is min(CPU cores - 1, 4), 0 on a single core (the main process
    then reads the data itself; a worker would only compete with it for the core)."""
    if setting != "auto":
        return int(setting)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(cores - 1, 4))


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack items of one clip length: ``waveform [B, S]``, and ``targets`` / ``masks`` keyed by output name."""
    lengths = {len(item["waveform"]) for item in items}
    if len(lengths) > 1:
        raise DataError(
            f"a batch mixes clip lengths ({', '.join(str(n) for n in sorted(lengths))} samples); clips are grouped "
            "into streams of one length before batching"
        )
    n_frames = max(item["n_frames"] for item in items)
    batch: dict[str, Any] = {
        "waveform": torch.stack([item["waveform"] for item in items]),
        "index": torch.tensor([item["index"] for item in items]),
        "clip_ids": [item["clip_id"] for item in items],
        "targets": {},
        "masks": {},
    }
    for description in TASK_DESCRIPTIONS.values():
        targets, masks = description.collate(items, n_frames)
        batch["targets"].update(targets)
        batch["masks"].update(masks)
    return batch


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with its tensors on ``device`` (non-blocking when pinned)."""
    moved = dict(batch)
    moved["waveform"] = batch["waveform"].to(device, non_blocking=True)
    moved["targets"] = {key: t.to(device, non_blocking=True) for key, t in batch["targets"].items()}
    moved["masks"] = {key: m.to(device, non_blocking=True) for key, m in batch["masks"].items()}
    return moved


def by_length(clips: ClipList) -> list[list[int]]:
    """Clip indices grouped by clip duration (shortest first), each group in the split's order."""
    groups: dict[float, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault(round(clip.duration, 6), []).append(i)
    return [groups[key] for key in sorted(groups)]


def split_loaders(data: ClipDataset, batch_size: int, num_workers: int, pin_memory: bool = False) -> list[Any]:
    """Unshuffled loaders over a split, one per clip length (validation, evaluation, inference).

    Each has a generator of its own: a loader without one draws its worker seed from the global RNG, which would
    shift the dropout masks of training.
    """
    return [
        torch.utils.data.DataLoader(
            torch.utils.data.Subset(data, indices), batch_size=batch_size, shuffle=False, num_workers=num_workers,
            collate_fn=collate, pin_memory=pin_memory, generator=torch.Generator().manual_seed(0),
        )
        for indices in by_length(data.clips)
    ]
