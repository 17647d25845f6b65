"""A synthetic stand-in of MAESTRO Real: minute-long recordings of five scenes with soft 1-s event labels.

Written in MAESTRO Real's own layout (``development_audio/<scene>/<file>.wav``,
``development_annotation/soft_labels_<scene>/<file>.txt`` with rows ``onset offset label confidence``) plus
``evaluation_setup/{train,val,eval}.txt``, so that the ``maestro`` reader is what reads it. It is no reproduction of
MAESTRO: six event classes (sounds of ``sounds.py``) with per-scene priors, over scene ambiences that differ in
spectrum and texture. The soft labels imitate several annotators: each of five marks a 1-s segment with a probability
that rises with how much of the segment the class covers; the confidence is the share who marked it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jasc_datasets.synthesis.dsp import add_at, band, slow_curve, spectral_noise, tone
from jasc_datasets.synthesis.sounds import bird, car, cutlery, footsteps, large_vehicle, talking
from jasc_datasets.synthesis.tut_joint import babble
from jasc_datasets.synthesis.writer import materialize, write_wav

STAND_IN_PRESET = "maestro-real"
SCENES = ("cafe_restaurant", "city_center", "grocery_store", "metro_station", "residential_area")
SAMPLE_RATE = 16000
ANNOTATORS = 5
#: The stand-in's classes (MAESTRO Real names) and the sound each is drawn with.
GENERATORS = {"people talking": talking, "footsteps": footsteps, "car": car, "cutlery and dishes": cutlery,
              "birds_singing": bird, "metro approaching": large_vehicle}
#: Expected events per minute of each class in each scene.
RATES = {
    "cafe_restaurant": {"people talking": 4.0, "cutlery and dishes": 4.0, "footsteps": 1.0},
    "city_center": {"car": 4.0, "people talking": 2.0, "footsteps": 2.0, "birds_singing": 0.5},
    "grocery_store": {"people talking": 2.0, "footsteps": 3.0, "cutlery and dishes": 1.0},
    "metro_station": {"metro approaching": 2.0, "footsteps": 3.0, "people talking": 2.0},
    "residential_area": {"birds_singing": 4.0, "car": 2.0, "footsteps": 1.0},
}


def ambience(rng: np.random.Generator, scene: str, n: int, sr: int) -> np.ndarray:
    """A scene's background at unit RMS: coloured noise, distant voices, hum or gusts by scene."""
    lo, hi, tilt = {"cafe_restaurant": (80, 4000, -3.0), "city_center": (30, 1500, -4.0),
                    "grocery_store": (60, 6000, -2.0), "metro_station": (30, 2500, -3.5),
                    "residential_area": (30, 8000, -2.0)}[scene]
    out = spectral_noise(rng, n, sr, band(lo, hi * rng.uniform(0.7, 1.3), tilt, 0.6))
    if scene in ("cafe_restaurant", "grocery_store"):
        out = out + rng.uniform(0.4, 0.9) * babble(rng, n, sr, int(rng.integers(3, 8)))
    if scene in ("grocery_store", "metro_station"):
        out = out + rng.uniform(0.1, 0.3) * tone(100.0, n, sr, (1.0, 0.5, 0.3))
    if scene == "residential_area":
        out = out * slow_curve(rng, n, sr, 0.5, 0.3)
    rms = float(np.sqrt(np.mean(out * out)))
    return out / rms if rms > 0 else out


def recording(rng: np.random.Generator, scene: str, seconds: float, sr: int) -> tuple[np.ndarray, list[tuple]]:
    """One recording and its events ``(onset, offset, label)``."""
    n = int(seconds * sr)
    audio = ambience(rng, scene, n, sr) * 10 ** (rng.uniform(-32, -24) / 20)
    events = []
    for label, rate in RATES[scene].items():
        for _ in range(int(rng.poisson(rate * seconds / 60))):
            length = float(rng.uniform(1.0, 6.0))
            onset = float(rng.uniform(0, seconds - 1.0))
            offset = min(seconds, onset + length)
            sound = GENERATORS[label](rng, int((offset - onset) * sr), sr)
            rms = float(np.sqrt(np.mean(sound * sound))) or 1.0
            add_at(audio, sound / rms * 10 ** (rng.uniform(-24, -12) / 20), int(onset * sr))
            events.append((onset, offset, label))
    peak = float(np.abs(audio).max())
    return (audio / peak * 0.7 if peak > 0.7 else audio), events


def soft_rows(rng: np.random.Generator, events: list[tuple], seconds: float) -> list[tuple[float, float, str, float]]:
    """Per 1-s segment and class: the share of ``ANNOTATORS`` who mark it, each with probability rising with the
    class's coverage of the segment; consecutive segments of equal confidence become one row."""
    rows = []
    n_seg = int(np.ceil(seconds))
    for label in sorted({e[2] for e in events}):
        cover = np.zeros(n_seg)
        for onset, offset, lab in events:
            if lab != label:
                continue
            for s in range(int(onset), min(n_seg, int(np.ceil(offset)))):
                cover[s] = max(cover[s], min(offset, s + 1) - max(onset, s))
        p = 1 / (1 + np.exp(-(cover - 0.35) * 10)) * (cover > 0)
        confidence = rng.binomial(ANNOTATORS, p) / ANNOTATORS
        s = 0
        while s < n_seg:
            e = s
            while e + 1 < n_seg and confidence[e + 1] == confidence[s]:
                e += 1
            if confidence[s] > 0:
                rows.append((float(s), float(min(e + 1, seconds)), label, float(confidence[s])))
            s = e + 1
    return sorted(rows)


def write_stand_in(out: Path, files_per_scene: int, file_seconds: float, seed: int = 0) -> Path:
    """The stand-in folder for these settings under ``out`` (generated once, then reused)."""
    folder = out / f"{files_per_scene}x{file_seconds:g}s_seed{seed}"
    key = {"preset": STAND_IN_PRESET, "files_per_scene": files_per_scene, "file_seconds": file_seconds,
           "seed": seed, "version": 1}

    def build(tmp: Path, progress) -> dict:
        n_eval = n_val = max(1, round(files_per_scene / 6))
        lists: dict[str, list[str]] = {"train": [], "val": [], "eval": []}
        for s, scene in enumerate(SCENES):
            for i in range(files_per_scene):
                rng = np.random.default_rng([seed, 3, s, i])
                stem = f"{scene}_{i:02d}"
                audio, events = recording(rng, scene, file_seconds, SAMPLE_RATE)
                write_wav(tmp / "development_audio" / scene / f"{stem}.wav", audio, SAMPLE_RATE)
                notes = tmp / "development_annotation" / f"soft_labels_{scene}" / f"{stem}.txt"
                notes.parent.mkdir(parents=True, exist_ok=True)
                notes.write_text("".join(f"{a:g}\t{b:g}\t{lab}\t{c:g}\n"
                                         for a, b, lab, c in soft_rows(rng, events, file_seconds)))
                split = "eval" if i < n_eval else "val" if i < n_eval + n_val else "train"
                lists[split].append(stem)
        (tmp / "evaluation_setup").mkdir()
        for split, stems in lists.items():
            (tmp / "evaluation_setup" / f"{split}.txt").write_text("".join(f"{stem}\n" for stem in stems))
        return {"reader": "maestro"}

    return materialize(folder, key, build)[0]
