"""The ``maestro`` dataset: MAESTRO Real's layout and soft labels, overlapping windows, and its synthetic stand-in."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from jasc_core import DataError, component
from jasc_datasets.maestro import read_soft_annotation, window_starts


def _real_layout(root, seconds=23.0):
    for scene, stem in (("cafe_restaurant", "cafe_restaurant_00"), ("metro_station", "metro_station_01")):
        audio = root / "development_audio" / scene / f"{stem}.wav"
        audio.parent.mkdir(parents=True, exist_ok=True)
        sf.write(audio, np.zeros(int(seconds * 8000), dtype=np.float32), 8000)
        notes = root / "development_annotation" / f"soft_labels_{scene}" / f"{stem}.txt"
        notes.parent.mkdir(parents=True, exist_ok=True)
        notes.write_text("0\t2\tpeople talking\t0.6\n2\t3\tpeople talking\t1\n9\t12\tfootsteps\t0.2\n"
                         "12\t13\tfootsteps\t0\n")


def test_windows_hop_and_end_at_the_file_end():
    assert window_starts(23.0, 10.0, 1.0)[-2:] == [(12.0, 22.0), (13.0, 23.0)]
    assert window_starts(23.5, 10.0, 5.0) == [(0, 10), (5, 15), (10, 20), (15, 23.5)]
    assert window_starts(7.0, 10.0, 1.0) == [(0.0, 7.0)]


def test_the_reader_keeps_soft_strengths_scenes_and_cuts_events_per_window(tmp_path):
    _real_layout(tmp_path)
    data = component("dataset", "maestro")({"root": str(tmp_path), "val_fraction": 0.0, "hop_seconds": 5.0})
    data.prepare()
    clips = data.load("train")
    assert clips.scene_labels == ["cafe_restaurant", "metro_station"]
    assert clips.event_labels == ["footsteps", "people talking"]
    first = next(c for c in clips if c.clip_id == "cafe_restaurant_00-000000-001000")
    assert first.scene == "cafe_restaurant" and first.duration == 10.0
    assert {(e.onset, e.offset, e.label, e.strength) for e in first.events} == {
        (0.0, 2.0, "people talking", 0.6), (2.0, 3.0, "people talking", 1.0), (9.0, 10.0, "footsteps", 0.2)}
    later = next(c for c in clips if c.clip_id == "cafe_restaurant_00-000500-001500")
    assert [(e.onset, e.offset, e.strength) for e in later.events] == [(4.0, 7.0, 0.2)]  # the 0-confidence row: none
    assert data.audio(later, 8000).shape == (80000,)


def test_a_malformed_annotation_row_names_its_file_and_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("0\t1\tcar\t0.5\n1\t2\tcar\t1.5\n")
    with pytest.raises(DataError, match=r"x.txt:2: confidence 1.5"):
        read_soft_annotation(str(path), __import__("collections").Counter())


def test_the_stand_in_has_five_scenes_soft_labels_and_three_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("JASC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("JASC_DATA", str(tmp_path / "data"))
    data = component("dataset", "maestro")({"stand_in_files_per_scene": 3, "stand_in_file_seconds": 12,
                                             "hop_seconds": 2.0})
    data.prepare()
    assert "synthetic stand-in of maestro-real" in data.stand_in
    assert data.splits() == ["eval", "train", "val"]
    clips = data.load("train")
    assert len(clips.scene_labels) == 5 and len({c.scene for c in clips}) == 5
    assert data.load("eval").event_labels == clips.event_labels == sorted(clips.event_labels)  # one vocabulary
    strengths = {e.strength for c in clips for e in c.events}
    assert any(0 < s < 1 for s in strengths) and max(strengths) <= 1.0
    with pytest.raises(DataError, match="require_real"):
        component("dataset", "maestro")({"require_real": True}).prepare()
