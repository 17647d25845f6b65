"""Preset ``tut-joint``: the 4 scenes and 25 event classes of the papers' TUT subset, with its statistics as prior.

Per (event, scene) pair the reference statistics give the number of events, their total and median duration
(``tut_joint_dev_event_stats.tsv``, from the public metadata). A pair absent there never occurs. Events of class c
in scene s form a Poisson process of rate ``n_events(c, s) / RECORDED_SECONDS[s]`` with log-normal durations of the
pair's median and mean (total / count), so frequent and rare pairs keep their proportions and long events (a fan,
30 s median) fill the clips of their scene.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from jasc_core import Event
from jasc_datasets.recordings import merge_events
from jasc_datasets.synthesis.dsp import add_at, band, slow_curve, spectral_noise, tone
from jasc_datasets.synthesis.sounds import EVENT_GENERATORS

SCENES = ("city_center", "home", "office", "residential_area")
#: Seconds of audio per scene assumed behind the reference counts (the statistics file has no durations).
#: office: 78 recordings of the 30-s TUT Acoustic Scenes 2016 files (its fan, present throughout, totals 2339.9 s);
#: the others: 10-12 TUT Sound Events recordings of about 4 minutes each.
RECORDED_SECONDS = {"city_center": 2900.0, "home": 2400.0, "office": 2340.0, "residential_area": 2900.0}
STATS_FILE = "tut_joint_dev_event_stats.tsv"
CLIP_SECONDS = 10.0
#: The papers' development/evaluation proportion (192 / 74 clips) and the share of development kept for validation.
EVAL_SHARE = 74 / (192 + 74)
VAL_SHARE = 0.15
MAX_EVENT_SECONDS = 60.0
MIN_EVENT_SECONDS = 0.03


@dataclass(frozen=True)
class PairStats:
    """Reference statistics of one (event, scene) pair."""

    label: str
    scene: str
    count: int
    total: float
    median: float

    @property
    def sigma(self) -> float:
        """Log-normal shape giving the pair's mean (total / count) for its median: mean = median * exp(sigma^2/2)."""
        mean = self.total / self.count
        return math.sqrt(2.0 * math.log(mean / self.median)) if mean > self.median * 1.01 else 0.15


def load_stats() -> list[PairStats]:
    """The reference statistics shipped with the package."""
    text = resources.files("jasc_datasets").joinpath(STATS_FILE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    return [
        PairStats(r["event_label"], r["scene_label"], int(r["n_events"]), float(r["total_seconds"]),
                  float(r["median_seconds"]))
        for r in rows
    ]


def event_labels(stats: list[PairStats]) -> list[str]:
    return sorted({p.label for p in stats})


# -- scene backgrounds -----------------------------------------------------------------------------------------


def babble(rng: np.random.Generator, n: int, sr: int, talkers: int) -> np.ndarray:
    """Distant voices: speech-shaped noise under a syllabic envelope per talker (cheap stand-in for many voices)."""
    out = np.zeros(n)
    noise = spectral_noise(rng, n, sr, band(150, 3000, tilt_db_per_octave=-3.0, edge=0.5))
    for _ in range(talkers):
        out += slow_curve(rng, n, sr, 8.0, 1.0) ** 2
    return noise * out / max(talkers, 1)


def background(rng: np.random.Generator, scene: str, n: int, sr: int) -> np.ndarray:
    """A scene's ambience at unit RMS. Ranges overlap between scenes so that the scene is learnable, not trivial."""
    if scene == "city_center":
        bed = spectral_noise(rng, n, sr, band(30, rng.uniform(600, 1500), rng.uniform(-5, -2), 0.6))
        extra = rng.uniform(0.3, 0.8) * babble(rng, n, sr, int(rng.integers(2, 6)))
        hum = 0.0
    elif scene == "home":
        bed = spectral_noise(rng, n, sr, band(40, rng.uniform(2000, 6000), rng.uniform(-4, -1), 0.6))
        extra = 0.0
        hum = rng.uniform(0.1, 0.4) * (rng.uniform() < 0.6)  # fridge
    elif scene == "office":
        bed = spectral_noise(rng, n, sr, band(80, rng.uniform(3000, 8000), rng.uniform(-3, 0), 0.6))
        extra = rng.uniform(0.0, 0.3) * (rng.uniform() < 0.3) * babble(rng, n, sr, 1)
        hum = rng.uniform(0.1, 0.4) * (rng.uniform() < 0.7)  # ventilation, lights
    else:  # residential_area
        bed = spectral_noise(rng, n, sr, band(30, rng.uniform(1500, 8000), rng.uniform(-4, -1), 0.8))
        bed = bed * slow_curve(rng, n, sr, 0.5, 0.3)  # gusts
        extra = rng.uniform(0.0, 0.4) * spectral_noise(rng, n, sr, band(30, 300, -3.0, 0.5))  # far traffic
        hum = 0.0
    out = bed + extra
    if hum:
        mains = 50.0 if rng.uniform() < 0.5 else 60.0
        out = out + hum * tone(mains * 2, n, sr, (1.0, 0.5, 0.3), phase=rng.uniform(0, 6.28))
    rms = float(np.sqrt(np.mean(out * out)))
    return out / rms if rms > 0 else out


# -- clips -----------------------------------------------------------------------------------------------------


def loudness(x: np.ndarray, sr: int) -> float:
    """RMS of the loudest 20-ms frame: the level of a sound as one hears it, for sparse clicks and steady noise."""
    frame = max(1, int(0.02 * sr))
    m = len(x) // frame
    if m == 0:
        return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    energy = (x[: m * frame] ** 2).reshape(m, frame).mean(axis=1)
    return float(np.sqrt(energy.max()))


def sample_events(rng: np.random.Generator, scene: str, stats: list[PairStats]) -> list[tuple[str, float, float]]:
    """(label, onset, offset) of the events intersecting a clip, onsets possibly before 0, offsets past the end."""
    events = []
    for pair in stats:
        if pair.scene != scene:
            continue
        rate = pair.count / RECORDED_SECONDS[scene]
        mean = pair.total / pair.count
        k = int(rng.poisson(rate * (CLIP_SECONDS + mean)))
        for _ in range(k):
            duration = float(np.clip(pair.median * math.exp(pair.sigma * rng.standard_normal()), MIN_EVENT_SECONDS,
                                     MAX_EVENT_SECONDS))
            onset = float(rng.uniform(-duration, CLIP_SECONDS))
            events.append((pair.label, onset, onset + duration))
    return events


def synthesize_clip(
    rng: np.random.Generator, scene: str, stats: list[PairStats], sr: int
) -> tuple[np.ndarray, list[Event]]:
    """One 10-s clip of ``scene``: background plus events at random SNRs; returns (float64 audio, merged events)."""
    n = int(round(CLIP_SECONDS * sr))
    audio = background(rng, scene, n, sr) * 10 ** (rng.uniform(-34, -24) / 20)
    bg_rms = float(np.sqrt(np.mean(audio * audio)))
    annotations = []
    for label, onset, offset in sample_events(rng, scene, stats):
        start, end = max(onset, 0.0), min(offset, CLIP_SECONDS)
        a, b = int(round(start * sr)), int(round(end * sr))
        if b - a < 2:
            continue
        sound = EVENT_GENERATORS[label](rng, b - a, sr)
        level = loudness(sound, sr)
        if level <= 0:
            continue
        snr_db = rng.uniform(0.0, 18.0)
        add_at(audio, sound * (bg_rms * 10 ** (snr_db / 20) / level), a)
        annotations.append(Event(round(start, 3), round(end, 3), label))
    peak = float(np.abs(audio).max())
    if peak > 0.95:  # keep headroom; scaling the whole clip keeps every SNR
        audio *= 0.95 / peak
    events, _, _ = merge_events(annotations)
    return audio, events

