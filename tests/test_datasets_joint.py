"""The joint-format loader: real-format fixtures, windowing, cutting, padding, merging, audio reading."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jasc_core import DataError, Event, labelled_tasks
from jasc_datasets.joint import Joint
from jasc_datasets.recordings import Recording, merge_events, window_recording

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"
HEADER = "path\tscene_label\tevent_start_time\tevent_end_time\tevent_label\n"


def write_wav(path: Path, seconds: float, sample_rate: int = 1000, channels: int = 1, signal=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sample_rate))
    data = signal if signal is not None else np.full((n, channels) if channels > 1 else n, 0.25, dtype=np.float32)
    sf.write(path, data, sample_rate, subtype="PCM_16")


@pytest.fixture
def excerpt_root(tmp_path: Path) -> Path:
    """The verbatim rows of three TUT recordings with WAVs of their real lengths (30 s, 181.2 s, 241 s)."""
    for rel, seconds in [
        ("TUT-acoustic-scenes-2016-development/audio/b113_270_300.wav", 30.0),
        ("TUT-sound-events-2016-development/audio/home/a038.wav", 181.2),
        ("TUT-sound-events-2017-development/audio/street/b099.wav", 241.0),
    ]:
        write_wav(tmp_path / rel, seconds, sample_rate=200)
    (tmp_path / "meta").mkdir()
    shutil.copy(FIXTURES / "tut_joint_excerpt.tsv", tmp_path / "meta" / "train.tsv")
    return tmp_path


@pytest.fixture
def small_root(tmp_path: Path) -> Path:
    """A 25-s recording with overlapping, touching, zero-length and boundary-crossing events, and an event-less one."""
    write_wav(tmp_path / "audio" / "a.wav", 25.0)
    write_wav(tmp_path / "audio" / "b.wav", 10.0)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.tsv").write_text(
        HEADER
        + "audio/a.wav\thome\t1.0\t3.0\tcar\n"
        + "audio/a.wav\thome\t2.5\t4.0\tcar\n"  # overlaps the previous: merged
        + "audio/a.wav\thome\t4.0\t5.0\tcar\n"  # touches: merged
        + "audio/a.wav\thome\t5.0\t5.0\tspeech\n"  # zero length: dropped
        + "audio/a.wav\thome\t8.0\t12.0\tspeech\n"  # crosses the 10-s boundary: cut
        + "audio/b.wav\toffice\t\t\t\n"  # no events
    )
    return tmp_path


def test_excerpt_loads_with_right_counts(excerpt_root: Path) -> None:
    clips = Joint({"root": str(excerpt_root)}).load("train")
    assert len(clips) == 3 + 19 + 25  # ceil(30/10) + ceil(181.2/10) + ceil(241/10)
    assert clips.scene_labels == ["city_center", "home", "office"]
    assert "people talking" in clips.event_labels and len(clips.event_labels) == 13
    assert clips.notes["merged_overlaps"] == 9
    assert clips.notes["dropped_zero_length"] == 1
    assert len({c.clip_id for c in clips}) == len(clips)
    for clip in clips:
        assert clip.duration == 10.0 and clip.scene is not None and clip.events is not None
        for event in clip.events:
            assert 0 <= event.onset < event.offset <= 10.0
    # the office recording's fan runs over the whole 30 s: one full-length event in each of its 3 clips
    office = [c for c in clips if c.scene == "office"]
    assert [tuple((e.onset, e.offset) for e in c.events if e.label == "fan") for c in office] == [((0.0, 10.0),)] * 3


def test_windowing_cuts_merges_and_keeps_eventless(small_root: Path) -> None:
    clips = Joint({"root": str(small_root)}).load("train")
    assert [c.clip_id for c in clips] == ["a__000", "a__001", "a__002", "b__000"]
    assert [c.start for c in clips] == [0.0, 10.0, 20.0, 0.0]
    assert clips[0].events == (Event(1.0, 5.0, "car"), Event(8.0, 10.0, "speech"))
    assert clips[1].events == (Event(0.0, 2.0, "speech"),)
    assert clips[2].events == ()  # padded tail, annotated and empty
    assert clips[3].events == () and clips[3].scene == "office"
    assert clips.notes["merged_overlaps"] == 2 and clips.notes["dropped_zero_length"] == 1
    assert clips.event_labels == ["car", "speech"] and clips.scene_labels == ["home", "office"]
    assert labelled_tasks(clips) == {"scene", "event"}


def test_audio_window_padding_and_resampling(tmp_path: Path) -> None:
    ramp = np.arange(25_000, dtype=np.float32) / 25_000 * 0.5
    write_wav(tmp_path / "ramp.wav", 25.0, signal=ramp)
    stereo = np.stack([np.full(8000 * 3, 0.5), np.full(8000 * 3, 0.1)], axis=1).astype(np.float32)
    write_wav(tmp_path / "stereo8k.wav", 3.0, sample_rate=8000, signal=stereo)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "x.tsv").write_text(HEADER + "ramp.wav\thome\t\t\t\nstereo8k.wav\thome\t\t\t\n")
    dataset = Joint({"root": str(tmp_path), "clip_seconds": 10.0})
    clips = dataset.load("x")
    second = dataset.audio(clips[1], 1000)
    assert second.dtype == np.float32 and second.shape == (10_000,)
    assert second[0] == pytest.approx(ramp[10_000], abs=1e-4)  # the window starts at 10 s
    last = dataset.audio(clips[2], 1000)
    assert last.shape == (10_000,) and np.all(last[5000:] == 0) and last[4999] > 0.4  # 5 s of audio, then padding
    mixed = dataset.audio(clips[3], 16_000)  # 8 kHz stereo -> 16 kHz mono
    assert mixed.shape == (160_000,)
    assert np.median(mixed[1000:40_000]) == pytest.approx(0.3, abs=1e-3) and np.all(mixed[50_000:] == 0)


def test_val_fraction_carves_whole_recordings(tmp_path: Path) -> None:
    rows = HEADER
    for i in range(10):
        write_wav(tmp_path / f"r{i}.wav", 12.0)
        rows += f"r{i}.wav\t{'home' if i % 2 else 'office'}\t\t\t\n"
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.tsv").write_text(rows)
    dataset = Joint({"root": str(tmp_path), "val_fraction": 0.4})
    assert dataset.splits() == ["train", "val"]
    train, val = dataset.load("train"), dataset.load("val")
    assert len(val) == 2 * 2 * 2 and len(train) == 6 * 2  # 2 recordings per scene, 2 clips per recording
    assert not {c.path for c in train} & {c.path for c in val}
    assert {c.scene for c in val} == {"home", "office"}


def test_configured_split_files_and_vocabulary(small_root: Path) -> None:
    os.rename(small_root / "meta" / "train.tsv", small_root / "dev.tsv")
    dataset = Joint({
        "root": str(small_root), "splits": {"train": "dev.tsv"},
        "event_labels": ["speech", "car", "dog"], "scene_labels": ["office", "home", "park"],
    })
    clips = dataset.load("train")
    assert clips.event_labels == ["speech", "car", "dog"] and clips.scene_labels == ["office", "home", "park"]
    with pytest.raises(DataError, match="no split 'eval'"):
        dataset.load("eval")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.floats(0, 5), st.sampled_from("ab")), max_size=12))
@example(raw=[(0.0, 1.875, "a"), (1.875, 1.0, "a")])  # touching on a point of the former 0.005-offset grid
def test_merge_and_window_preserve_activity(raw) -> None:
    events = [Event(round(on, 3), round(on + d, 3), label) for on, d, label in raw]
    merged, merges, zeros = merge_events(events)
    for label in "ab":
        spans = [e for e in merged if e.label == label]
        assert all(x.offset < y.onset for x, y in zip(spans, spans[1:], strict=False))  # no overlap or touch
        # Event times have 3 decimals; grid points with a 4th never sit on a boundary, where touching events are
        # inactive before merging and active after (a point of measure zero, not a change of activity).
        grid = np.arange(0, 36, 0.01) + 0.0047
        before = np.zeros_like(grid, dtype=bool)
        for e in events:
            if e.label == label:
                before |= (grid > e.onset) & (grid < e.offset)
        after = np.zeros_like(grid, dtype=bool)
        for e in spans:
            after |= (grid > e.onset) & (grid < e.offset)
        assert np.array_equal(before, after)
    assert zeros == sum(1 for e in events if e.offset <= e.onset)
    assert len(merged) + merges + zeros == len(events)
    from collections import Counter

    notes: Counter = Counter()
    clips = window_recording(Recording("x.wav", "x.wav", "s", merged), 36.0, 10.0, "x", notes)
    assert len(clips) == 4
    total = sum(e.offset - e.onset for c in clips for e in c.events)
    assert total == pytest.approx(sum(e.offset - e.onset for e in merged), abs=1e-4)


def test_unique_stems_extend_only_where_names_collide() -> None:
    from jasc_datasets.recordings import unique_stems

    stems = unique_stems(["x/audio/home/a038.wav", "x/audio/residential_area/a038.wav", "y/b099.wav"])
    assert stems == {"x/audio/home/a038.wav": "home-a038", "x/audio/residential_area/a038.wav": "residential_area-a038",
                     "y/b099.wav": "y-b099"}
    assert unique_stems(["x/a038.wav", "y/b099.wav"]) == {"x/a038.wav": "a038", "y/b099.wav": "b099"}


labels = st.sampled_from(["car", "people talking", "(object) impact"])
event_rows = st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 500), labels), max_size=6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["home", "office"]), event_rows), min_size=1, max_size=4))
def test_joint_format_round_trip(tmp_path_factory, recordings) -> None:
    from jasc_datasets.joint_format import read_joint, write_joint
    from jasc_datasets.tables import Problems

    folder = tmp_path_factory.mktemp("rt")
    rows = [(f"audio/r{i}.wav", scene, [Event(on / 100, (on + d) / 100, label) for on, d, label in events])
            for i, (scene, events) in enumerate(recordings)]
    write_joint(str(folder / "a.tsv"), rows)
    problems = Problems()
    read = read_joint(str(folder / "a.tsv"), str(folder), problems)
    assert not problems
    assert [(r.relpath, r.scene, r.events) for r in read] == [(p, s, e) for p, s, e in rows]
