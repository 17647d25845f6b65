"""Bad input to the joint loader: each gives a DataError naming the file (and line); skip_bad_files counts audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jasc_core import DataError
from jasc_datasets.joint import Joint

HEADER = "path\tscene_label\tevent_start_time\tevent_end_time\tevent_label\n"


def make(tmp_path: Path, rows: str, header: str = HEADER, **config) -> Joint:
    good = np.zeros(2000, dtype=np.float32)
    sf.write(tmp_path / "good.wav", good, 1000, subtype="PCM_16")
    (tmp_path / "meta").mkdir(exist_ok=True)
    (tmp_path / "meta" / "train.tsv").write_text(header + "good.wav\thome\t0.5\t1.0\tcar\n" + rows)
    return Joint({"root": str(tmp_path), **config})


def bad_audio(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.wav"
    if kind == "truncated":
        sf.write(path, np.zeros(4000, dtype=np.float32), 1000, subtype="PCM_16")
        path.write_bytes(path.read_bytes()[:3000])
    elif kind == "zero_length":
        sf.write(path, np.zeros(0, dtype=np.float32), 1000, subtype="PCM_16")
    elif kind == "text":
        path.write_text("this is not audio\n" * 20)
    elif kind == "empty_file":
        path.write_bytes(b"")
    # "missing": no file at all


AUDIO_CASES = {
    "truncated": "truncated audio file",
    "zero_length": "has no samples",
    "text": "not a readable audio file",
    "empty_file": "not a readable audio file",
    "missing": "not found",
}


@pytest.mark.parametrize("kind", sorted(AUDIO_CASES))
def test_bad_audio_is_an_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    bad_audio(tmp_path, kind)
    dataset = make(tmp_path, "bad.wav\thome\t\t\t\n")
    with pytest.raises(DataError, match=AUDIO_CASES[kind]) as info:
        dataset.load("train")
    assert str(tmp_path / "bad.wav") in str(info.value)
    assert "train.tsv:3" in str(info.value)  # where the annotation names it


@pytest.mark.parametrize("kind", sorted(AUDIO_CASES))
def test_skip_bad_files_counts_them(tmp_path: Path, kind: str, caplog) -> None:
    bad_audio(tmp_path, kind)
    dataset = make(tmp_path, "bad.wav\thome\t\t\t\n", skip_bad_files=True)
    clips = dataset.load("train")
    assert len(clips) == 1 and clips[0].path.endswith("good.wav")
    assert clips.notes["skipped_bad_files"] == 1
    assert len(dataset.skipped) == 1 and "bad.wav" in dataset.skipped[0]
    assert any("skipping" in r.getMessage() for r in caplog.records)


def test_stereo_and_8k_are_fine(tmp_path: Path) -> None:
    sf.write(tmp_path / "st.wav", np.zeros((8000, 2), dtype=np.float32), 8000, subtype="PCM_16")
    dataset = make(tmp_path, "st.wav\toffice\t\t\t\n")
    clips = dataset.load("train")
    assert len(clips) == 2 and dataset.audio(clips[1], 16000).shape == (160_000,)


ANNOTATION_CASES = {
    "unknown_label": ("good.wav\thome\t1.0\t1.5\tdog\n", "unknown event label 'dog'"),
    "unknown_scene": ("good.wav\tbeach\t\t\t\n", "unknown scene label 'beach'"),
    "onset_after_offset": ("good.wav\thome\t1.5\t1.0\tcar\n", "onset 1.5 is after offset 1.0"),
    "non_numeric": ("good.wav\thome\tabc\t1.0\tcar\n", "event_start_time 'abc' is not a number"),
    "negative": ("good.wav\thome\t-1\t1.0\tcar\n", "not a finite time"),
    "partial_event": ("good.wav\thome\t1.0\t\tcar\n", "all given or all empty"),
    "two_scenes": ("good.wav\toffice\t\t\t\n", "has scene 'office' here but 'home'"),
    "extra_field": ("good.wav\thome\t1\t2\tcar\textra\n", "6 tab-separated fields"),
}


@pytest.mark.parametrize("case", sorted(ANNOTATION_CASES))
def test_bad_annotation_names_file_and_line(tmp_path: Path, case: str) -> None:
    row, message = ANNOTATION_CASES[case]
    dataset = make(tmp_path, row, event_labels=["car"], scene_labels=["home", "office"])
    with pytest.raises(DataError, match=message) as info:
        dataset.load("train")
    assert f"{tmp_path / 'meta' / 'train.tsv'}:3" in str(info.value)


def test_header_with_missing_column(tmp_path: Path) -> None:
    header = "path\tscene_label\tevent_start_time\tevent_label\n"
    dataset = make(tmp_path, "", header=header)
    with pytest.raises(DataError, match="header lacks column.*'event_end_time'") as info:
        dataset.load("train")
    assert "train.tsv:1" in str(info.value)


def test_missing_root_and_annotation(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.root '.*nope' does not exist.*metadata_SEDandASC01.*jasc data download tut-joint"):
        Joint({"root": str(tmp_path / "nope")}).load("train")
    with pytest.raises(DataError, match="does not exist"):  # also when the split files are named explicitly
        Joint({"root": str(tmp_path / "nope"), "splits": {"train": "meta/train.tsv"}}).load("train")
    with pytest.raises(DataError, match="annotation file not found"):
        Joint({"root": str(tmp_path), "splits": {"train": "absent.tsv"}}).load("train")


def test_every_problem_is_collected(tmp_path: Path) -> None:
    rows = "good.wav\thome\tx\t1\tcar\ngood.wav\thome\t2\t1\tcar\n"
    dataset = make(tmp_path, rows)
    _, problems = dataset.read_annotations()
    assert len(problems) == 2 and ":3:" in problems[0] and ":4:" in problems[1]
    with pytest.raises(DataError, match="and 1 more problem"):
        dataset.load("train")
