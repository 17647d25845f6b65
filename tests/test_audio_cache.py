"""Audio caches: the on-disk cache of decoded clips (keys, invalidation, atomic entries, the build before training)
and the memory budget of the in-memory cache."""

from __future__ import annotations

import dataclasses
import json
import os
from types import SimpleNamespace

import engine_fakes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core.contract.data import Clip, ClipList
from jasc_core.data.audio_cache import AudioCache
from jasc_core.data.cache_fill import build_audio_cache
from jasc_core.data.clips import ClipDataset
from jasc_core.data.loaders import split_loaders
from jasc_core.training.streams import build_streams

RATE = 100


class FileSource:
    """A dataset whose clips are .npy files; counts its decodes."""

    name = "npy_files"
    config = None

    def __init__(self) -> None:
        self.decodes = 0

    def audio(self, clip: Clip, sample_rate: int) -> np.ndarray:
        self.decodes += 1
        data = np.load(clip.path).astype(np.float32)
        first = round(clip.start * sample_rate)
        return data[first:first + round(clip.duration * sample_rate)]


def _clips(tmp_path, n=3, seconds=1.0):
    clips = []
    for i in range(n):
        path = tmp_path / f"clip{i}.npy"
        np.save(path, np.random.default_rng(i).standard_normal(int(2 * seconds * RATE)).astype(np.float32))
        clips.append(Clip(clip_id=f"c{i}", path=str(path), start=0.0, duration=seconds, scene="a", events=()))
    return ClipList(clips, scene_labels=["a"], event_labels=[])


def _dataset(clips, source, **kwargs):
    return ClipDataset(clips, source, sample_rate=RATE, hop_seconds=0.1, n_frames_for=lambda n: n // 10,
                       labels={"scene": ["a"]}, **kwargs)


def test_disk_cache_decodes_once_and_gives_the_same_samples(tmp_path):
    clips, source = _clips(tmp_path), FileSource()
    cache = AudioCache(tmp_path / "cache", source, RATE)
    first = [cache.load(clip, lambda c: source.audio(c, RATE)) for clip in clips]
    assert source.decodes == 3
    again = [cache.load(clip, lambda c: source.audio(c, RATE)) for clip in clips]
    assert source.decodes == 3
    for a, b, clip in zip(first, again, clips, strict=True):
        assert np.array_equal(a, b) and np.array_equal(b, FileSource().audio(clip, RATE))


def test_a_changed_source_file_another_window_or_rate_is_a_new_entry(tmp_path):
    clips, source = _clips(tmp_path, n=1), FileSource()
    cache = AudioCache(tmp_path / "cache", source, RATE)
    clip = clips[0]
    before = cache.path_for(clip)
    assert before == cache.path_for(clip)
    assert cache.path_for(Clip("c0", clip.path, 0.5, 1.0)) != before
    assert AudioCache(tmp_path / "cache", source, RATE * 2).path_for(clip) != before
    cache.load(clip, lambda c: source.audio(c, RATE))
    np.save(clip.path, np.ones(2 * RATE, dtype=np.float32))
    os.utime(clip.path, ns=(10**18, 10**18))  # a new modification time, whatever the clock's resolution
    assert cache.path_for(clip) != before and not cache.has(clip)
    assert np.array_equal(cache.load(clip, lambda c: source.audio(c, RATE)), np.ones(RATE, dtype=np.float32))
    assert source.decodes == 2


def test_a_clip_without_a_file_is_decoded_every_time(tmp_path):
    source = FileSource()
    cache = AudioCache(tmp_path / "cache", source, RATE)
    virtual = Clip("v", "memory://v", 0.0, 1.0)
    assert cache.path_for(virtual) is None and cache.has(virtual)
    assert len(cache.load(virtual, lambda c: np.zeros(RATE, dtype=np.float32))) == RATE
    assert not (tmp_path / "cache").exists()


def test_a_write_killed_midway_leaves_no_entry_that_looks_complete(tmp_path, monkeypatch):
    clips, source = _clips(tmp_path, n=1), FileSource()
    cache = AudioCache(tmp_path / "cache", source, RATE)

    def killed(handle, array, allow_pickle=False):
        handle.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt  # stands in for SIGKILL between two writes

    monkeypatch.setattr(np, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.load(clips[0], lambda c: source.audio(c, RATE))
    monkeypatch.undo()
    assert not cache.path_for(clips[0]).exists()
    assert np.array_equal(cache.load(clips[0], lambda c: source.audio(c, RATE)), source.audio(clips[0], RATE))


def test_build_fills_missing_entries_once(tmp_path):
    clips, source = _clips(tmp_path, n=4), FileSource()
    data = _dataset(clips, source, disk_cache=AudioCache(tmp_path / "cache", source, RATE))
    assert build_audio_cache([data], num_workers=0, progress=False) == {
        "clips_found": 0, "clips_added": 4, "seconds_added": 4.0}
    assert data._waveforms == {}  # building does not fill the memory cache
    assert build_audio_cache([data], num_workers=0, progress=False)["clips_found"] == 4
    decodes = source.decodes
    assert np.array_equal(data[2]["waveform"].numpy(), FileSource().audio(clips[2], RATE))
    assert source.decodes == decodes


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), budget_clips=st.floats(0, 10))
def test_memory_cache_never_exceeds_its_budget(tmp_path_factory, n, budget_clips):
    tmp = tmp_path_factory.mktemp("budget")
    clips, source = _clips(tmp, n=n), FileSource()
    budget = int(budget_clips * RATE * 4)
    data = _dataset(clips, source, cache=True, cache_bytes=budget)
    for _ in range(2):
        for i in range(n):
            data[i]
    kept = sum(a.nbytes for a in data._waveforms.values())
    assert kept <= budget and len(data._waveforms) == min(n, int(budget_clips))
    assert source.decodes == n + (n - len(data._waveforms))  # clips beyond the budget are read again


def test_a_run_with_the_disk_cache_fills_it_and_matches_a_run_without(fakes, tmp_path):
    from jasc_core.training import run_recipe

    data = {"name": "synthetic", "preset": "tut-joint", "minutes": 0.5, "sample_rate": 8000,
            "cache_dir": str(tmp_path / "synth")}
    runs = []
    for name, cache in (("plain", False), ("cached", True), ("again", True)):
        recipe = engine_fakes.make_recipe(**{"data": data, "train.disk_cache": cache, "train.epochs": 1,
                                             "train.disk_cache_dir": str(tmp_path / "audio"),
                                             "train.cache_memory_mb": 0.2, "evaluate.plots": False})
        runs.append(run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / name))
    entries = list((tmp_path / "audio").rglob("*.npy"))
    assert entries and not list((tmp_path / "audio").rglob("*.tmp"))
    metrics = [json.loads((run / "metrics.json").read_text())["eval"] for run in runs]
    assert metrics[0] == metrics[1] == metrics[2]


def test_the_workers_of_every_stream_together_keep_the_memory_cache_within_its_budget(tmp_path, monkeypatch):
    # Each stream's loader has worker processes of its own, each holding a copy of the dataset: a per-worker share
    # of budget / workers let the streams together reach streams x budget.
    clips = _clips(tmp_path, n=8)
    clips.clips[4:] = [dataclasses.replace(clip, duration=0.5) for clip in clips.clips[4:]]  # a second stream
    budget = 4 * RATE * 4  # four 1-s clips
    data = _dataset(clips, FileSource(), cache=True, cache_bytes=budget)
    readers = build_streams(data, ("scene",), batch_size=2, batch_sizes={}, seed=0, num_workers=2)
    assert len(readers) == 2
    monkeypatch.setattr("torch.utils.data.get_worker_info", lambda: SimpleNamespace(num_workers=2))
    for i in range(len(clips)):  # what one worker of one stream could keep
        data[i]
    kept = sum(a.nbytes for a in data._waveforms.values())
    assert 0 < kept * 2 * len(readers) <= budget
    val = _dataset(clips, FileSource(), cache=True, cache_bytes=budget)
    assert len(split_loaders(val, 2, num_workers=2, persistent=True)) == 2 and val.worker_pools == 2
