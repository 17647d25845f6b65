"""Sound classes of the synthesizer: one generator per signature, ``generate(rng, n, sr) -> float64 [n]``.

Each class has a distinct spectral-temporal signature (chirps, click trains, harmonic stacks with formants, filtered
noise bursts, engine rumble). Some classes of different scenes deliberately share a generator (CONFUSABLE below):
they sound alike and only the scene tells them apart, which is what gives multitask learning something to gain.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jasc_datasets.synthesis.dsp import (
    add_at,
    band,
    damped_modes,
    envelope,
    normalise,
    sawtooth,
    slow_curve,
    spectral_noise,
    tone,
)

Generator = Callable[[np.random.Generator, int, int], np.ndarray]


# -- grains: short sounds that event classes repeat --------------------------------------------------------------


def _grains(rng: np.random.Generator, n: int, sr: int, grain: Generator, period: float, jitter: float) -> np.ndarray:
    """Repeat ``grain`` every ``period`` s (+- ``jitter`` fraction) over ``n`` samples; at least one grain."""
    out = np.zeros(n)
    t = 0.0
    while True:
        g = grain(rng, min(n - int(t * sr), int(0.5 * sr)), sr)
        add_at(out, g, int(t * sr))
        t += period * (1.0 + jitter * rng.uniform(-1, 1))
        if t * sr >= n - 0.01 * sr:
            break
    return out


def _click(rng, n, sr):
    m = max(1, min(n, int(rng.uniform(0.004, 0.010) * sr)))
    burst = spectral_noise(rng, m, sr, band(2500, 9000)) * np.exp(-np.arange(m) / (0.0015 * sr))
    return burst + 0.5 * damped_modes(m, sr, [rng.uniform(3000, 4500)], [0.002], [1.0])


def _key(rng, n, sr):
    m = max(1, min(n, int(0.03 * sr)))
    return spectral_noise(rng, m, sr, band(900, 3200)) * np.exp(-np.arange(m) / (0.006 * sr))


def _clink(rng, n, sr):
    m = max(1, min(n, int(0.25 * sr)))
    f = rng.uniform(2200, 3800)
    return damped_modes(m, sr, [f, f * 2.32, f * 3.1], [0.06, 0.04, 0.02], [1.0, 0.6, 0.3])


def _ceramic(rng, n, sr):
    m = max(1, min(n, int(0.15 * sr)))
    f = rng.uniform(900, 1800)
    return damped_modes(m, sr, [f, f * 1.71, f * 2.63], [0.04, 0.03, 0.02], [1.0, 0.7, 0.4])


def _glass(rng, n, sr):
    m = max(1, min(n, int(0.5 * sr)))
    f = rng.uniform(4000, 6500)
    return damped_modes(m, sr, [f, f * 1.5, f * 2.1], [0.25, 0.15, 0.1], [1.0, 0.5, 0.3])


def _thump(rng, n, sr):
    m = max(1, min(n, int(0.3 * sr)))
    body = damped_modes(m, sr, [rng.uniform(60, 140)], [0.06], [1.0])
    crack = spectral_noise(rng, m, sr, band(150, 2000)) * np.exp(-np.arange(m) / (0.01 * sr))
    return body + 0.4 * crack


def _step(rng, n, sr):
    m = max(1, min(n, int(0.12 * sr)))
    body = damped_modes(m, sr, [rng.uniform(90, 180)], [0.025], [0.7])
    crunch = spectral_noise(rng, m, sr, band(500, 3000)) * np.exp(-np.arange(m) / (0.02 * sr))
    return body + 0.6 * crunch


def _ratchet(rng, n, sr):
    m = max(1, min(n, int(0.004 * sr)))
    return spectral_noise(rng, m, sr, band(3000, 7000)) * np.exp(-np.arange(m) / (0.001 * sr))


# -- event classes -----------------------------------------------------------------------------------------------


def impact(rng, n, sr):
    """Thumps: a low damped mode plus a short noise crack, one per ~0.5 s."""
    return _grains(rng, n, sr, _thump, 0.5, 0.5)


def click(rng, n, sr):
    """One or two sharp high clicks (press and release)."""
    return _grains(rng, n, sr, _click, rng.uniform(0.05, 0.09), 0.2)


def typing(rng, n, sr):
    """A train of mid-band key clicks, 6-10 per second."""
    return _grains(rng, n, sr, _key, rng.uniform(0.1, 0.16), 0.5)


def wheel(rng, n, sr):
    """A ratchet: tiny high clicks at 25-40 Hz."""
    return _grains(rng, n, sr, _ratchet, 1.0 / rng.uniform(25, 40), 0.1)


def cutlery(rng, n, sr):
    """Metallic clinks with inharmonic partials, a few per second."""
    return _grains(rng, n, sr, _clink, rng.uniform(0.15, 0.35), 0.6)


def dishes(rng, n, sr):
    """Ceramic clatter: short mid-frequency inharmonic decays in clusters."""
    return _grains(rng, n, sr, _ceramic, rng.uniform(0.08, 0.2), 0.7)


def glass(rng, n, sr):
    """Glass jingling: high, long-ringing partials."""
    return _grains(rng, n, sr, _glass, rng.uniform(0.1, 0.25), 0.5)


def footsteps(rng, n, sr):
    """Footsteps at about 2 per second."""
    return _grains(rng, n, sr, _step, rng.uniform(0.45, 0.6), 0.1)


def whoosh(rng, n, sr):
    """Low broadband air noise with a slow swell (fan, wind)."""
    cutoff = rng.uniform(500, 1300)
    x = spectral_noise(rng, n, sr, band(60, cutoff, tilt_db_per_octave=-3.0, edge=0.5))
    return x * slow_curve(rng, n, sr, 0.4, 0.5) * envelope(n, sr, 0.2, 0.2)


def squeal(rng, n, sr):
    """A tonal squeal at 2-5 kHz with vibrato (brakes, squeaky hinges)."""
    f0 = rng.uniform(2000, 5000)
    t = np.arange(n) / sr
    freq = f0 * (1.0 + 0.015 * np.sin(2 * np.pi * rng.uniform(4, 8) * t))
    return tone(freq, n, sr, (1.0, 0.35, 0.1)) * envelope(n, sr, 0.03, 0.08)


def water(rng, n, sr):
    """Running water: high band-passed noise with fast flutter."""
    x = spectral_noise(rng, n, sr, band(1500, 7000))
    return x * slow_curve(rng, n, sr, 25.0, 0.6) * envelope(n, sr, 0.05, 0.1)


def washing(rng, n, sr):
    """Washing dishes: gurgling mid-band water with ceramic knocks."""
    x = spectral_noise(rng, n, sr, band(400, 3000)) * slow_curve(rng, n, sr, 12.0, 0.8)
    return normalise(x) + 0.8 * normalise(dishes(rng, n, sr))


def rustle(rng, n, sr):
    """Rustling: crackly high noise whose amplitude jumps many times a second."""
    x = spectral_noise(rng, n, sr, band(2000, 12000))
    return x * slow_curve(rng, n, sr, 40.0, 1.0) ** 3 * envelope(n, sr, 0.02, 0.05)


def breathing(rng, n, sr):
    """Breathing: band-passed noise in slow inhale/exhale cycles."""
    x = spectral_noise(rng, n, sr, band(300, 2500))
    t = np.arange(n) / sr
    cycle = np.sin(np.pi * t * rng.uniform(0.5, 0.8) + rng.uniform(0, np.pi)) ** 2
    return x * cycle * envelope(n, sr, 0.05, 0.05)


def _engine(rng, n, sr, f_lo, f_hi, noise_cut, harmonics):
    f0 = rng.uniform(f_lo, f_hi)
    t = np.arange(n) / sr
    glide = 1.0 + 0.08 * np.tanh((t - t[-1] / 2 if n else t) * rng.uniform(0.5, 2.0))  # pass-by Doppler
    hum = tone(f0 * glide * slow_curve(rng, n, sr, 1.0, 0.05), n, sr, harmonics)
    noise = spectral_noise(rng, n, sr, band(40, noise_cut, tilt_db_per_octave=-4.0, edge=0.4))
    bell = np.exp(-(((t - t.mean()) / max(t[-1] if n else 1.0, 1e-3) * 2.5) ** 2)) if n else t
    return (normalise(hum) + noise) * (0.2 + 0.8 * bell)


def car(rng, n, sr):
    """Car pass-by: engine harmonics at 25-45 Hz, tyre noise, rising then falling level."""
    return _engine(rng, n, sr, 25, 45, 1500, (1.0, 0.7, 0.5, 0.3, 0.2))


def large_vehicle(rng, n, sr):
    """Bus or truck: lower, rougher engine (13-22 Hz with many harmonics), darker noise."""
    return _engine(rng, n, sr, 13, 22, 600, (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3))


# Vowel formants (Hz) of an adult speaker; children's are scaled up.
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410), (300, 870, 2240))


def _formant_shape(formants, bandwidth):
    def shape(freqs):
        gain = np.zeros_like(freqs)
        for k, f in enumerate(formants):
            gain += 0.6**k * np.exp(-0.5 * ((freqs - f) / bandwidth) ** 2)
        return gain

    return shape


def voice(rng, n, sr, f_lo=90.0, f_hi=210.0, formant_scale=1.0, syllable=0.2):
    """Voiced speech: a sawtooth source at a drifting pitch, filtered syllable by syllable by vowel formants."""
    f0 = rng.uniform(f_lo, f_hi) * slow_curve(rng, n, sr, 3.0, 0.15)
    source = sawtooth(f0, sr)
    out = np.zeros(n)
    hop = max(1, int(syllable * sr))
    window = np.hanning(2 * hop)
    for start in range(-hop, n, hop):
        a, b = max(start, 0), min(start + 2 * hop, n)
        if b - a < 16:
            continue
        if rng.uniform() < 0.2:
            continue  # a pause between words
        formants = [f * formant_scale for f in VOWELS[rng.integers(len(VOWELS))]]
        seg = source[a:b]
        spec = np.fft.rfft(seg)
        spec *= _formant_shape(formants, 90.0 * formant_scale)(np.fft.rfftfreq(len(seg), 1.0 / sr))
        out[a:b] += np.fft.irfft(spec, len(seg)) * window[a - start : b - start]
    return out


def talking(rng, n, sr):
    """Adult speech: pitch 90-210 Hz, adult formants."""
    return voice(rng, n, sr)


def children(rng, n, sr):
    """Children: pitch 250-400 Hz, formants scaled up 25 %, faster syllables."""
    return voice(rng, n, sr, 250.0, 400.0, 1.25, 0.15)


def bird(rng, n, sr):
    """Bird song: phrases of fast upward or downward FM chirps between 2 and 7 kHz."""
    out = np.zeros(n)
    t = 0.0
    while t * sr < n:
        m = int(rng.uniform(0.04, 0.12) * sr)
        f_start, f_end = rng.uniform(2000, 4000), rng.uniform(4000, 7000)
        if rng.uniform() < 0.5:
            f_start, f_end = f_end, f_start
        chirp = tone(np.linspace(f_start, f_end, m), m, sr, (1.0, 0.2)) * np.hanning(m)
        add_at(out, chirp, int(t * sr))
        t += m / sr + rng.uniform(0.03, 0.15)
    return out


def _creak(rng, n, sr):
    f = rng.uniform(150, 400) * slow_curve(rng, n, sr, 8.0, 0.3)
    src = sawtooth(f, sr) * slow_curve(rng, n, sr, 30.0, 0.8)
    return src * envelope(n, sr, 0.05, 0.05)


def cupboard(rng, n, sr):
    """A cupboard door: a creak ending in a thump."""
    out = 0.6 * normalise(_creak(rng, n, sr))
    thump = _thump(rng, n, sr)
    add_at(out, 2.0 * normalise(thump), max(0, n - len(thump)))
    return out


def drawer(rng, n, sr):
    """A drawer: rising sliding noise ending in a thump."""
    x = spectral_noise(rng, n, sr, band(300, 1500)) * np.linspace(0.3, 1.0, n)
    thump = _thump(rng, n, sr)
    add_at(x, 2.0 * normalise(thump), max(0, n - len(thump)))
    return x


#: Event class -> generator. Pairs sharing a generator are confusable by design and told apart by their scenes:
#: fan (office) / wind blowing (residential area), brakes squeaking (city) / (object) squeaking (office),
#: mouse clicking (office) / (object) snapping (home), (object) impact (home, office) / (object) banging
#: (residential area).
EVENT_GENERATORS: dict[str, Generator] = {
    "(object) banging": impact,
    "(object) impact": impact,
    "(object) rustling": rustle,
    "(object) snapping": click,
    "(object) squeaking": squeal,
    "bird singing": bird,
    "brakes squeaking": squeal,
    "breathing": breathing,
    "car": car,
    "children": children,
    "cupboard": cupboard,
    "cutlery": cutlery,
    "dishes": dishes,
    "drawer": drawer,
    "fan": whoosh,
    "glass jingling": glass,
    "keyboard typing": typing,
    "large vehicle": large_vehicle,
    "mouse clicking": click,
    "mouse wheeling": wheel,
    "people talking": talking,
    "people walking": footsteps,
    "washing dishes": washing,
    "water tap running": water,
    "wind blowing": whoosh,
}
