"""Filling the disk cache (``train.disk_cache``) of a run's clip datasets before training, in loader workers with a
progress bar; the cache itself (keys, entries, atomic writes) is ``jasc_core.data.audio_cache``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from rich.progress import track

from jasc_core.data.clips import ClipDataset


class _Filler(torch.utils.data.Dataset):
    """Loader items that fill the cache entries of a dataset's missing clips (in worker processes)."""

    def __init__(self, data: ClipDataset, indices: Sequence[int]) -> None:
        self.data, self.indices = data, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> float:
        return float(self.data.waveform(self.indices[i], keep=False).size) / self.data.sample_rate


def build_audio_cache(datasets: Sequence[ClipDataset], num_workers: int, progress: bool) -> dict[str, float]:
    """Fill the disk cache of each ``ClipDataset`` (with ``disk_cache`` set) before training, with a progress bar.

    Returns what was done: clips found already cached, clips added, and the seconds of audio added.
    """
    found = added = 0
    seconds = 0.0
    for data in datasets:
        if data.disk_cache is None:
            continue
        missing = [i for i, clip in enumerate(data.clips) if not data.disk_cache.has(clip)]
        found += len(data.clips) - len(missing)
        if not missing:
            continue
        # A generator of its own: a loader without one draws its seed from the global RNG and would shift training's.
        loader = torch.utils.data.DataLoader(_Filler(data, missing), batch_size=None, num_workers=num_workers,
                                             generator=torch.Generator().manual_seed(0))
        items: Iterable[float] = loader
        if progress:
            items = track(loader, total=len(missing), description="decoding audio into the disk cache",
                          transient=True)
        for clip_seconds in items:
            seconds += clip_seconds
            added += 1
    return {"clips_found": found, "clips_added": added, "seconds_added": seconds}
