"""Synthetic soundscapes: determinism, atomic writing, respect of the reference statistics, the dataset component."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jasc_core import DataError, labelled_tasks
from jasc_datasets.synthesis import tut_joint
from jasc_datasets.synthesis.presets import split_sizes
from jasc_datasets.synthesis.writer import read_manifest
from jasc_datasets.synthetic import Synthetic, reader_for, synthesize

RATE = 8000  # tests run at a low rate: the generator is the same, only faster


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_two_syntheses_are_byte_identical(tmp_path: Path) -> None:
    a, generated_a = synthesize("tut-joint", tmp_path / "a", minutes=0.5, seed=3, sample_rate=RATE)
    b, generated_b = synthesize("tut-joint", tmp_path / "b", minutes=0.5, seed=3, sample_rate=RATE)
    assert generated_a and generated_b
    files = _tree(a)
    assert files == _tree(b) and "manifest.json" in files and "meta/train.tsv" in files
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors and len(match) == len(files)
    c, _ = synthesize("tut-joint", tmp_path / "c", minutes=0.5, seed=4, sample_rate=RATE)
    assert (a / "audio/train/clip_00000.wav").read_bytes() != (c / "audio/train/clip_00000.wav").read_bytes()


def test_written_audio_and_layout(tmp_path: Path) -> None:
    folder, _ = synthesize("tut-joint", tmp_path / "d", minutes=0.5, seed=0, sample_rate=RATE)
    manifest = read_manifest(folder)
    assert manifest["splits"] == {"train": 1, "val": 1, "eval": 1}
    info = sf.info(str(folder / "audio/train/clip_00000.wav"))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (RATE, 1, 10 * RATE, "PCM_16")
    reader = reader_for("tut-joint", folder)
    assert reader.splits() == ["train", "val", "eval"]
    clips = reader.load("train")
    assert clips.scene_labels == list(tut_joint.SCENES) and len(clips.event_labels) == 25
    audio = reader.audio(clips[0], 4000)
    assert audio.shape == (40_000,) and 0 < np.abs(audio).max() <= 0.951


def test_cache_hit_and_existing_folder(tmp_path: Path) -> None:
    folder, generated = synthesize("tut-joint", tmp_path / "e", minutes=0.2, sample_rate=RATE)
    assert generated
    stamp = os.stat(folder / "manifest.json").st_mtime_ns
    assert synthesize("tut-joint", folder, minutes=0.2, sample_rate=RATE) == (folder, False)
    assert os.stat(folder / "manifest.json").st_mtime_ns == stamp
    with pytest.raises(DataError, match="other settings"):
        synthesize("tut-joint", folder, minutes=0.2, seed=1, sample_rate=RATE)
    other = tmp_path / "not-a-dataset"
    other.mkdir()
    with pytest.raises(DataError, match="not a complete synthetic dataset"):
        synthesize("tut-joint", other, minutes=0.2, sample_rate=RATE)
    assert synthesize("tut-joint", other, minutes=0.2, sample_rate=RATE, force=True)[1]
    assert read_manifest(other) is not None


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C in the middle of writing
        return real(*args, **kwargs)

    real = tut_joint.synthesize_clip
    monkeypatch.setattr(tut_joint, "synthesize_clip", failing)
    with pytest.raises(KeyboardInterrupt):
        synthesize("tut-joint", tmp_path / "f", minutes=0.5, sample_rate=RATE)
    assert os.listdir(tmp_path) == []  # neither the target nor the temporary folder
    # A hard kill leaves the hidden temporary folder, without manifest: never taken for a dataset.
    (tmp_path / ".f.tmp-1-dead").mkdir()
    (tmp_path / ".f.tmp-1-dead" / "meta").mkdir()
    assert read_manifest(tmp_path / ".f.tmp-1-dead") is None and not (tmp_path / "f").exists()
    monkeypatch.setattr(tut_joint, "synthesize_clip", real)
    folder, generated = synthesize("tut-joint", tmp_path / "f", minutes=0.5, sample_rate=RATE)
    assert generated and read_manifest(folder) is not None


def test_generator_respects_reference_statistics() -> None:
    stats = tut_joint.load_stats()
    allowed = {(p.label, p.scene) for p in stats}
    seen = set()
    rng = np.random.default_rng(0)
    for index in range(400):
        scene = tut_joint.SCENES[index % 4]
        for label, onset, offset in tut_joint.sample_events(rng, scene, stats):
            assert (label, scene) in allowed
            assert offset > 0 and onset < tut_joint.CLIP_SECONDS
            seen.add((label, scene))
    assert len(seen) >= 30  # nearly every allowed pair occurs in 1000 clips-worth of sampling
    # frequent pairs stay frequent: keyboard typing outnumbers breathing in office, as 1425 to 31
    rng = np.random.default_rng(1)
    office = [e[0] for _ in range(200) for e in tut_joint.sample_events(rng, "office", stats)]
    assert office.count("keyboard typing") > 10 * office.count("breathing")


def test_synthesized_clip_labels_match_the_scene() -> None:
    stats = tut_joint.load_stats()
    allowed = {(p.label, p.scene) for p in stats}
    for index, scene in enumerate(tut_joint.SCENES):
        audio, events = tut_joint.synthesize_clip(np.random.default_rng(index), scene, stats, RATE)
        assert audio.shape == (10 * RATE,) and np.isfinite(audio).all()
        assert all((e.label, scene) in allowed and 0 <= e.onset < e.offset <= 10.0 for e in events)


@pytest.mark.parametrize("n", [1, 2, 3, 18, 180])
def test_split_sizes(n: int) -> None:
    sizes = split_sizes(n, tut_joint.EVAL_SHARE, tut_joint.VAL_SHARE)
    assert sum(sizes.values()) == n and min(sizes.values()) >= 0
    if n >= 3:
        assert min(sizes.values()) >= 1
    if n == 180:
        assert sizes == {"train": 110, "val": 20, "eval": 50}  # 74/266 of 180 = 50 for eval, 15 % of the rest val


def test_synthetic_component_uses_the_cache(tmp_path: Path) -> None:
    block = {"minutes": 0.3, "sample_rate": RATE, "cache_dir": str(tmp_path / "cache"), "seed": 2}
    dataset = Synthetic(block)
    assert dataset.splits() == ["train", "val", "eval"]
    clips = dataset.load("train")
    assert len(clips) >= 1 and labelled_tasks(clips) == {"scene", "event"}
    assert dataset.folder().parent == tmp_path / "cache" / "synthetic"
    assert read_manifest(dataset.folder()) is not None
    assert Synthetic(block).folder() == dataset.folder()
    assert Synthetic({**block, "seed": 5}).folder() != dataset.folder()
    assert Synthetic({**block, "clip_seconds": 5.0}).folder() == dataset.folder()  # loader options share the data
    assert len(Synthetic({**block, "clip_seconds": 5.0}).load("train")) == 2 * len(clips)


def test_cache_dir_defaults_to_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JASC_CACHE", str(tmp_path / "envcache"))
    assert Synthetic({}).folder().parent == tmp_path / "envcache" / "synthetic"


def test_annotated_events_are_audible() -> None:
    """Inside annotated event spans the signal is louder than outside them (labels match the audio)."""
    stats = tut_joint.load_stats()
    ratios = []
    for index in range(12):
        scene = tut_joint.SCENES[index % 4]
        audio, events = tut_joint.synthesize_clip(np.random.default_rng(100 + index), scene, stats, RATE)
        active = np.zeros(len(audio), dtype=bool)
        for e in events:
            active[int(e.onset * RATE) : int(e.offset * RATE)] = True
        if 0.05 < active.mean() < 0.95:
            ratios.append(np.mean(audio[active] ** 2) / np.mean(audio[~active] ** 2))
    assert len(ratios) >= 4 and np.median(ratios) > 2.0
