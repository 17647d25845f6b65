"""Recording devices: TAU meta.csv's device column, the stand-in's simulated devices, the DCASE 2024 Task 1 training
subsets, and accuracy per device in metrics and tables."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core import Clip, DataError
from jasc_core.evaluation.devices import device_table_lines, per_device_accuracy
from jasc_datasets.dcase_formats import Tau
from jasc_datasets.synthesis.devices import DEVICES, SEEN_DEVICES, UNSEEN_DEVICES, record_with
from jasc_datasets.tau_subsets import SUBSET_PERCENTAGES, device_of, draw_subset


def test_device_from_the_source_label_column_else_the_file_name():
    assert device_of({"source_label": "s2"}, "audio/x-y-1-s2.wav") == "s2"
    assert device_of({"device": "b"}, "audio/x.wav") == "b"
    assert device_of({}, "audio/airport-lisbon-1000-40000-c.wav") == "c"
    assert device_of({}, "audio/plain.wav") is None


def _tau_folder(tmp_path, with_subset: bool):
    rows, train = ["filename\tscene_label\tidentifier\tsource_label"], ["filename\tscene_label"]
    for i in range(12):
        scene, device = ("park", "bus")[i % 2], ("a", "b", "s1")[i % 3]
        name = f"audio/{scene}-c-{i}-{device}.wav"
        (tmp_path / "audio").mkdir(exist_ok=True)
        sf.write(tmp_path / name, np.zeros(800, dtype=np.float32), 8000)
        rows.append(f"{name}\t{scene}\tc-{i}\t{device}")
        train.append(f"{name}\t{scene}")
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "evaluation_setup").mkdir()
    (tmp_path / "evaluation_setup" / "fold1_train.csv").write_text("\n".join(train) + "\n")
    if with_subset:
        (tmp_path / "split_setup").mkdir()
        (tmp_path / "split_setup" / "split25.csv").write_text("\n".join(train[:4]) + "\n")


def test_tau_clips_carry_their_device_and_a_subset_file_selects_the_training_clips(tmp_path):
    _tau_folder(tmp_path, with_subset=True)
    tau = Tau({"root": str(tmp_path), "subset": 25})
    tau.prepare()
    clips = tau.load("train")
    assert [c.device for c in clips] == ["a", "b", "s1"]
    assert len(clips) == 3 and clips.notes["subset_25_of"] == 12
    assert [c.device for c in Tau({"root": str(tmp_path)}).load("train")] == ["a", "b", "s1"] * 4


def test_a_missing_subset_file_names_the_file(tmp_path):
    _tau_folder(tmp_path, with_subset=False)
    tau = Tau({"root": str(tmp_path), "subset": 10})
    tau.prepare()
    with pytest.raises(DataError, match=r"split_setup/split10.csv not found"):
        tau.load("train")


def _clips(n_devices: int, n_scenes: int, per_cell: int) -> list[Clip]:
    return [Clip(f"{d}-{s}-{i}", "p", 0.0, 1.0, scene=f"s{s}", device=f"d{d}")
            for d in range(n_devices) for s in range(n_scenes) for i in range(per_cell)]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 30), st.integers(0, 5))
def test_drawn_subsets_nest_and_keep_every_device_and_scene_share(n_devices, n_scenes, per_cell, seed):
    clips = _clips(n_devices, n_scenes, per_cell)
    subsets = [{c.clip_id for c in draw_subset(clips, p, seed)} for p in SUBSET_PERCENTAGES]
    assert all(a <= b for a, b in zip(subsets, subsets[1:], strict=False))
    assert subsets[-1] == {c.clip_id for c in clips}
    for percent, kept in zip(SUBSET_PERCENTAGES, subsets, strict=True):
        for d in range(n_devices):
            for s in range(n_scenes):
                n = sum(1 for i in kept if i.startswith(f"{d}-{s}-"))
                assert n == max(1, round(percent / 100 * per_cell))


def test_simulated_devices_colour_the_audio_differently():
    rng = np.random.default_rng(0)
    clean = rng.standard_normal(32000) * 0.05
    spectra = {}
    for device in SEEN_DEVICES + UNSEEN_DEVICES:
        out = record_with(device, clean, 32000, np.random.default_rng(1))
        power = np.abs(np.fft.rfft(out)) ** 2
        spectra[device] = np.log10(np.add.reduceat(power, np.arange(0, len(power), len(power) // 16)) + 1e-12)
    names = list(spectra)
    # Every pair differs by several dB in some band: audible colouring, not a rounding difference.
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(spectra[a] - spectra[b]).max() > 0.3, (a, b)
    assert set(DEVICES) == set(SEEN_DEVICES) | set(UNSEEN_DEVICES)


def test_accuracy_per_device_and_its_table():
    clips = [Clip(f"c{i}", "p", 0.0, 1.0, scene="x", device=("a", "b", None)[i % 3]) for i in range(6)]
    probs = {"scene": np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.4], [0.1, 0.9], [0.7, 0.3], [0.3, 0.7]])}
    targets = {"scene": np.array([0, 0, 0, 0, 0, 1])}
    labelled = {"scene": np.array([True, True, True, True, True, False])}
    rows = per_device_accuracy([c.clip_id for c in clips], probs, targets, labelled, clips)
    assert rows == {"scene": {"a": {"accuracy": 0.5, "n_clips": 2}, "b": {"accuracy": 0.5, "n_clips": 2}}}
    lines = device_table_lines({"scene": {"accuracy": 0.5, "per_device": rows["scene"]}, "split": "eval"})
    assert "| a | b |" in lines and "| 50.00% (2) | 50.00% (2) |" in lines
    assert device_table_lines({"scene": {"accuracy": 0.5}}) == []
