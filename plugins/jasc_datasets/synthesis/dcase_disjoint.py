"""Preset ``dcase-disjoint``: scene-only and event-only data in the DCASE formats (the setting of 003).

- TAU-like part (``tau/``): 1-s clips of 10 scenes with ``meta.csv`` (``filename scene_label identifier
  source_label``; ``source_label`` is the recording device) and ``evaluation_setup/fold1_{train,val,evaluate}.csv``
  (``filename scene_label``). Each clip is recorded by a simulated device (``synthesis/devices.py``): train and val
  by ``a, b, c, s1-s3``, eval also by the unseen ``s4-s6``, as in TAU 2022 Mobile.
- DESED-like part (``desed/``): 10-s domestic clips of 10 event classes, in a strong part (``filename onset offset
  event_label``), a weak part (``filename event_labels``, comma-separated) and an unlabeled part (audio only), plus
  strongly labelled validation and evaluation sets.

Half of the requested minutes go to each part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jasc_core import Event
from jasc_datasets.recordings import merge_events
from jasc_datasets.synthesis import sounds
from jasc_datasets.synthesis.devices import SEEN_DEVICES, UNSEEN_DEVICES, record_with
from jasc_datasets.synthesis.dsp import band, envelope, normalise, slow_curve, spectral_noise, tone
from jasc_datasets.synthesis.tut_joint import babble, loudness
from jasc_datasets.synthesis.writer import Progress, write_wav

TAU_SCENES = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
              "street_pedestrian", "street_traffic", "tram")
TAU_CITIES = ("barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague", "stockholm", "vienna")
TAU_DEVICES = SEEN_DEVICES  # the devices of train and val; eval adds UNSEEN_DEVICES (synthesis/devices.py)
DESED_CLASSES = ("Alarm_bell_ringing", "Blender", "Cat", "Dishes", "Dog", "Electric_shaver_toothbrush", "Frying",
                 "Running_water", "Speech", "Vacuum_cleaner")
TAU_SECONDS = 1.0
DESED_SECONDS = 10.0
#: Share of the DESED-like clips per part (train strong / weak / unlabeled, validation, evaluation).
DESED_PARTS = {"strong": 0.25, "weak": 0.15, "unlabeled": 0.40, "validation": 0.10, "eval": 0.10}

# Scene ambience parameters: (noise high cut Hz, tilt dB/oct, babble amount, rumble amount, hum amount, gusts).
_SCENE_PARAMS = {
    "airport": (5000, -2.0, 0.6, 0.3, 0.2, 0.0),
    "bus": (1500, -4.0, 0.3, 0.9, 0.3, 0.0),
    "metro": (2500, -3.0, 0.2, 0.8, 0.1, 0.0),
    "metro_station": (4000, -2.5, 0.5, 0.4, 0.1, 0.0),
    "park": (8000, -1.0, 0.1, 0.1, 0.0, 0.5),
    "public_square": (6000, -1.5, 0.5, 0.3, 0.0, 0.2),
    "shopping_mall": (5000, -2.0, 0.8, 0.1, 0.3, 0.0),
    "street_pedestrian": (6000, -1.5, 0.6, 0.4, 0.0, 0.1),
    "street_traffic": (2500, -3.5, 0.1, 0.9, 0.0, 0.1),
    "tram": (2000, -3.0, 0.3, 0.7, 0.2, 0.0),
}
# Scene cues: a sound typical of the scene that is sometimes present.
_SCENE_CUES = {"metro": sounds.squeal, "tram": sounds.squeal, "park": sounds.bird, "street_traffic": sounds.car,
               "street_pedestrian": sounds.footsteps, "shopping_mall": sounds.talking, "airport": sounds.talking}


def desed_part_sizes(n: int) -> dict[str, int]:
    """Clips per DESED part: the DESED_PARTS shares, every part at least one clip when there are enough clips."""
    sizes = {part: int(round(share * n)) for part, share in DESED_PARTS.items()}
    if n >= len(DESED_PARTS):
        sizes = {part: max(1, count) for part, count in sizes.items()}
    sizes["unlabeled"] += n - sum(sizes.values())  # the largest part absorbs the rounding
    if sizes["unlabeled"] < 0:
        sizes["strong"] += sizes["unlabeled"]
        sizes["unlabeled"] = 0
    return sizes


def tau_clip(rng: np.random.Generator, scene: str, sr: int) -> np.ndarray:
    n = int(round(TAU_SECONDS * sr))
    high, tilt, crowd, rumble, hum, gusts = _SCENE_PARAMS[scene]
    high *= rng.uniform(0.6, 1.4)
    out = spectral_noise(rng, n, sr, band(40, high, tilt + rng.uniform(-1, 1), 0.6))
    if gusts:
        out = out * slow_curve(rng, n, sr, 2.0, gusts)
    if crowd:
        out += crowd * rng.uniform(0.5, 1.5) * babble(rng, n, sr, 3)
    if rumble:
        out += rumble * rng.uniform(0.5, 1.5) * spectral_noise(rng, n, sr, band(20, 250, -3.0, 0.5))
    if hum:
        out += hum * tone(rng.uniform(80, 400), n, sr, (1.0, 0.5, 0.25))
    cue = _SCENE_CUES.get(scene)
    if cue is not None and rng.uniform() < 0.5:
        m = int(rng.uniform(0.3, 1.0) * n)
        sound = cue(rng, m, sr)
        start = int(rng.integers(0, n - m + 1))
        out[start : start + m] += normalise(sound) * rng.uniform(0.3, 1.0)
    out = normalise(out) * 10 ** (rng.uniform(-30, -18) / 20)
    return np.clip(out, -0.95, 0.95)


def _beeps(rng, n, sr):
    f = rng.uniform(800, 3000)
    period = rng.uniform(0.2, 0.6)
    gate = (np.arange(n) / sr % period) < period * 0.5
    return tone(f, n, sr, (1.0, 0.4, 0.2)) * gate


def _motor(rng, n, sr, f_lo, f_hi, cut):
    f0 = rng.uniform(f_lo, f_hi) * slow_curve(rng, n, sr, 2.0, 0.03)
    whine = tone(f0, n, sr, (1.0, 0.6, 0.4, 0.3, 0.2))
    return (normalise(whine) + spectral_noise(rng, n, sr, band(100, cut, -2.0, 0.5))) * envelope(n, sr, 0.1, 0.1)


def _cat(rng, n, sr):
    return sounds.voice(rng, n, sr, 400.0, 700.0, 1.6, 0.4) * envelope(n, sr, 0.05, 0.1)


def _dog(rng, n, sr):
    bark = sounds.voice(rng, n, sr, 300.0, 500.0, 1.1, 0.12)
    gate = slow_curve(rng, n, sr, 6.0, 1.0) > 1.0
    return bark * gate


def _frying(rng, n, sr):
    x = spectral_noise(rng, n, sr, band(1000, 10000))
    return x * slow_curve(rng, n, sr, 60.0, 1.0) ** 4


DESED_GENERATORS = {
    "Alarm_bell_ringing": (_beeps, 1.0, 6.0),
    "Blender": (lambda r, n, sr: _motor(r, n, sr, 150, 300, 6000), 2.0, 8.0),
    "Cat": (_cat, 0.5, 2.0),
    "Dishes": (sounds.dishes, 0.3, 2.0),
    "Dog": (_dog, 0.3, 2.0),
    "Electric_shaver_toothbrush": (lambda r, n, sr: _motor(r, n, sr, 60, 140, 4000), 2.0, 8.0),
    "Frying": (_frying, 3.0, 10.0),
    "Running_water": (sounds.water, 1.0, 8.0),
    "Speech": (sounds.talking, 0.5, 4.0),
    "Vacuum_cleaner": (lambda r, n, sr: _motor(r, n, sr, 700, 1400, 9000), 3.0, 10.0),
}


def desed_clip(rng: np.random.Generator, sr: int, at_least_one: bool) -> tuple[np.ndarray, list[tuple]]:
    """A 10-s domestic clip with 0-4 events; returns (audio, [(onset, offset, label)])."""
    n = int(round(DESED_SECONDS * sr))
    bed = spectral_noise(rng, n, sr, band(40, rng.uniform(2000, 6000), rng.uniform(-4, -1), 0.6))
    audio = bed * 10 ** (rng.uniform(-40, -30) / 20)
    bg_rms = float(np.sqrt(np.mean(audio * audio)))
    count = int(rng.poisson(1.6))
    if at_least_one:
        count = max(count, 1)
    events = []
    for _ in range(count):
        label = DESED_CLASSES[int(rng.integers(len(DESED_CLASSES)))]
        generate, d_lo, d_hi = DESED_GENERATORS[label]
        duration = min(rng.uniform(d_lo, d_hi), DESED_SECONDS)
        onset = round(float(rng.uniform(0.0, DESED_SECONDS - duration)), 3)
        offset = round(onset + duration, 3)
        a, b = int(round(onset * sr)), int(round(offset * sr))
        sound = generate(rng, b - a, sr)
        level = loudness(sound, sr)
        if level > 0:
            audio[a:b] += sound * (bg_rms * 10 ** (rng.uniform(5.0, 20.0) / 20) / level)
            events.append((onset, offset, label))
    peak = float(np.abs(audio).max())
    if peak > 0.95:
        audio *= 0.95 / peak
    merged, _, _ = merge_events([Event(on, off, label) for on, off, label in events])
    return audio, [(e.onset, e.offset, e.label) for e in merged]


@dataclass(frozen=True)
class DcaseDisjoint:
    """TAU-like 1-s scene clips + DESED-like 10-s event clips (strong, weak, unlabeled), in their own formats."""

    name: str = "dcase-disjoint"
    reader: str = "disjoint"
    #: Part of the generation key: 2 added the simulated devices (a folder of version 1 is regenerated, not reused).
    version: int = 2

    def vocabularies(self) -> tuple[list[str], list[str]]:
        return list(TAU_SCENES), list(DESED_CLASSES)

    def build(self, folder: Path, minutes: float, seed: int, sample_rate: int, progress: Progress | None) -> dict:
        from jasc_datasets.synthesis.presets import clip_rng, split_plan, split_sizes

        n_tau = max(1, int(round(minutes * 30.0 / TAU_SECONDS)))
        n_desed = max(1, int(round(minutes * 30.0 / DESED_SECONDS)))
        total = n_tau + n_desed
        tau_sizes = split_sizes(n_tau, 0.3, 0.15)
        tau = folder / "tau"
        meta = ["filename\tscene_label\tidentifier\tsource_label"]
        lists: dict[str, list[str]] = {split: ["filename\tscene_label"] for split in tau_sizes}
        for index, split in enumerate(split_plan(tau_sizes)):
            rng = clip_rng(seed, self.name, index)
            scene = TAU_SCENES[index % len(TAU_SCENES)]
            city = TAU_CITIES[int(rng.integers(len(TAU_CITIES)))]
            devices = TAU_DEVICES + UNSEEN_DEVICES if split == "eval" else TAU_DEVICES
            device = devices[int(rng.integers(len(devices)))]
            identifier = f"{city}-{index // 10:04d}"
            filename = f"audio/{scene}-{identifier}-{index % 10 * 1000}-{device}.wav"
            audio = record_with(device, tau_clip(rng, scene, sample_rate), sample_rate, rng)
            write_wav(tau / filename, audio, sample_rate)
            meta.append(f"{filename}\t{scene}\t{identifier}\t{device}")
            lists[split].append(f"{filename}\t{scene}")
            if progress:
                progress(index + 1, total)
        (tau / "evaluation_setup").mkdir(parents=True)
        (tau / "meta.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
        split_files = {"train": "fold1_train.csv", "val": "fold1_val.csv", "eval": "fold1_evaluate.csv"}
        for split, lines in lists.items():
            (tau / "evaluation_setup" / split_files[split]).write_text("\n".join(lines) + "\n", encoding="utf-8")

        desed = folder / "desed"
        parts = [part for part, count in desed_part_sizes(n_desed).items() for _ in range(count)]
        strong = {"strong": [], "validation": [], "eval": []}
        weak = []
        audio_dirs = {"strong": "audio/train/strong", "weak": "audio/train/weak", "unlabeled": "audio/train/unlabeled",
                      "validation": "audio/validation", "eval": "audio/eval"}
        for offset, part in enumerate(parts):
            index = n_tau + offset
            audio, events = desed_clip(clip_rng(seed, self.name, index), sample_rate, at_least_one=part == "weak")
            filename = f"synth_{index:06d}.wav"
            write_wav(desed / audio_dirs[part] / filename, audio, sample_rate)
            if part in strong:
                strong[part] += [f"{filename}\t{on:.3f}\t{off:.3f}\t{label}" for on, off, label in events] or [
                    f"{filename}\t\t\t"]
            elif part == "weak":
                weak.append(f"{filename}\t{','.join(sorted({label for _, _, label in events}))}")
            if progress:
                progress(index + 1, total)
        for part in audio_dirs:
            (desed / audio_dirs[part]).mkdir(parents=True, exist_ok=True)
        meta_files = {"strong": "metadata/train/strong.tsv", "validation": "metadata/validation/validation.tsv",
                      "eval": "metadata/eval/eval.tsv"}
        for part, rows in strong.items():
            path = desed / meta_files[part]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(["filename\tonset\toffset\tevent_label", *rows]) + "\n", encoding="utf-8")
        (desed / "metadata/train/weak.tsv").write_text(
            "\n".join(["filename\tevent_labels", *weak]) + "\n", encoding="utf-8"
        )
        return {"reader": self.reader, "splits": tau_sizes,
                "desed_parts": {p: parts.count(p) for p in DESED_PARTS}}
