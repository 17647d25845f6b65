"""A torch dataset over a clip list: each item is one clip's waveform plus the targets its labels give.

The task descriptions decide the targets (``TaskDescription.item_targets``) and class masks; waveforms come from a
memory cache, the on-disk ``AudioCache`` or the dataset's decoder. ``jasc_core.data.loaders`` stacks items into a
``Batch``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from jasc_core.contract.components import Dataset, FeatureExtractor
from jasc_core.contract.data import Clip, ClipList
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.data.audio_cache import AudioCache
from jasc_core.errors import DataError


class ClipDataset(torch.utils.data.Dataset):
    """A torch dataset over a ``ClipList``: each item is a dict with the waveform and the targets it has.

    ``labels`` are the vocabularies by task the targets index into. ``cache`` keeps decoded waveforms in memory after
    first use (small datasets, several epochs), up to ``cache_bytes`` in all. Each worker process of a loader holds a
    copy of the dataset and so a cache of its own: with ``worker_pools`` loaders (one per training stream, one per
    clip length of a validation split) of ``num_workers`` each, every worker keeps
    ``cache_bytes / (worker_pools * num_workers)``, so memory stays bounded whatever the dataset's size.
    ``disk_cache`` (an ``AudioCache``) reads decoded, resampled clips from disk instead of decoding them again.
    """

    def __init__(
        self,
        clips: ClipList,
        source: Dataset,
        *,
        sample_rate: int,
        hop_seconds: float,
        n_frames_for: Callable[[int], int],
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
        #: Loaders whose workers each hold a copy of this dataset (set by whoever builds them).
        self.worker_pools = 1
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
        share = self.cache_bytes // (worker.num_workers * self.worker_pools if worker is not None else 1)
        return self._cached_bytes + nbytes <= share

    def _decode(self, clip: Clip) -> np.ndarray:
        audio = np.asarray(self.source.audio(clip, self.sample_rate), dtype=np.float32)
        expected = round(clip.duration * self.sample_rate)
        if audio.ndim != 1 or len(audio) != expected:
            raise DataError(
                f"clip '{clip.clip_id}' ({clip.path}): audio() returned shape {audio.shape}, expected ({expected},) "
                f"= duration {clip.duration} s at {self.sample_rate} Hz"
            )
        return audio

    def __getitem__(self, index: int) -> dict[str, object]:
        """One clip as ``jasc_core.data.loaders.collate`` stacks it (waveform, targets and class masks by output
        name, where it comes from)."""
        clip = self.clips[index]
        audio = self.waveform(index)
        n_frames = int(self.n_frames_for(len(audio)))
        targets: dict[str, torch.Tensor] = {}
        class_masks: dict[str, torch.Tensor] = {}
        for task, labels in self.labels.items():
            targets.update(TASK_DESCRIPTIONS[task].item_targets(clip, labels, n_frames, self.hop_seconds))
            class_masks.update(TASK_DESCRIPTIONS[task].item_class_masks(clip, labels))
        return {"index": index, "clip_id": clip.clip_id, "waveform": torch.from_numpy(audio), "n_frames": n_frames,
                "targets": targets, "class_masks": class_masks, "device": clip.device, "dataset": clip.dataset}


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
