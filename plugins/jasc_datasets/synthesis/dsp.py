"""Signal primitives for the synthesizer, all float64 and vectorised.

float64 on purpose: numpy's float32 transcendental functions may use different SIMD code paths on different CPUs,
and a last-bit difference can flip a 16-bit sample. In float64 such differences stay far below one quantisation
step, which is what makes the written WAV files byte-identical across machines in practice.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len

TWO_PI = 2.0 * np.pi


def spectral_noise(rng: np.random.Generator, n: int, sr: int, shape) -> np.ndarray:
    """Gaussian noise of ``n`` samples whose amplitude spectrum is ``shape(freqs)`` (normalised to unit RMS).

    Built directly in the frequency domain (one inverse FFT), at an FFT-friendly length then trimmed. The shape is
    evaluated on a log-spaced grid and interpolated: smooth shapes lose nothing and it is several times faster.
    """
    if n <= 0:
        return np.zeros(0)
    m = next_fast_len(n, real=True)
    bins = m // 2 + 1
    # Only bins below the shape's top (where it has decayed by > 50 dB) are drawn: a low-passed noise costs less.
    used = min(bins, int(getattr(shape, "top", sr) * m / sr) + 1)
    spectrum = np.zeros(bins, dtype=np.complex128)
    spectrum[:used] = rng.standard_normal(2 * used).view(np.complex128)
    grid = np.geomspace(1.0, sr / 2, 256)
    spectrum[:used] *= np.interp(np.arange(used) * (sr / m), grid, shape(grid))
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, m)[:n]
    return normalise(x)


def band(lo: float, hi: float, tilt_db_per_octave: float = 0.0, edge: float = 0.25):
    """A spectral shape: smooth band-pass from ``lo`` to ``hi`` Hz with a power-law tilt (dB per octave)."""

    def shape(freqs: np.ndarray) -> np.ndarray:
        f = np.maximum(freqs, 1.0)
        # Smooth logistic edges (``edge`` octaves wide) avoid the ringing of a brick-wall filter.
        octaves_lo = np.log2(f / lo) / edge
        octaves_hi = np.log2(hi / f) / edge
        gain = 1.0 / (1.0 + np.exp(-np.clip(octaves_lo, -40, 40))) / (1.0 + np.exp(-np.clip(octaves_hi, -40, 40)))
        if tilt_db_per_octave:
            gain *= 10.0 ** (tilt_db_per_octave * np.log2(f / lo) / 20.0)
        return gain

    shape.top = hi * 2.0 ** (6.0 * edge)  # the logistic edge is below exp(-6) (-52 dB) past this frequency
    return shape


def normalise(x: np.ndarray) -> np.ndarray:
    """Scale to unit RMS (silence stays silence)."""
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return x / rms if rms > 1e-12 else x


def envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear attack and release (seconds) around a flat top, shortened to fit ``n`` samples."""
    env = np.ones(n)
    a = min(int(attack * sr), n // 2)
    r = min(int(release * sr), n - a)
    if a > 0:
        env[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    if r > 0:
        env[n - r :] = np.linspace(1.0, 0.0, r)
    return env


def slow_curve(rng: np.random.Generator, n: int, sr: int, rate: float, depth: float) -> np.ndarray:
    """A smooth random modulation around 1 with about ``rate`` changes per second (interpolated knots)."""
    knots = max(2, int(n / sr * rate) + 2)
    values = 1.0 + depth * rng.uniform(-1.0, 1.0, knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), values)


def tone(
    freq: np.ndarray | float, n: int, sr: int, harmonics: tuple[float, ...] = (1.0,), phase: float = 0.0
) -> np.ndarray:
    """Sum of harmonics ``k * freq`` with the given amplitudes; ``freq`` may vary per sample (Hz)."""
    f = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    theta = phase + TWO_PI * np.cumsum(f) / sr
    sin1 = np.sin(theta)
    out = harmonics[0] * sin1
    if len(harmonics) > 1:
        # sin((k+1)x) = 2 cos(x) sin(kx) - sin((k-1)x): multiply-adds instead of one sin() per harmonic.
        two_cos = 2.0 * np.cos(theta)
        top = float(f.max(initial=0.0))
        prev, cur = np.zeros(n), sin1
        for k, amp in enumerate(harmonics[1:], start=2):
            prev, cur = cur, two_cos * cur - prev
            if amp and k * top < sr / 2:
                out += amp * cur
    return out


def damped_modes(n: int, sr: int, freqs, decays, amps) -> np.ndarray:
    """A struck object: decaying sinusoids (frequencies Hz, decay time constants s, amplitudes)."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    for f, tau, a in zip(freqs, decays, amps, strict=True):
        if f < sr / 2:
            out += a * np.exp(-t / tau) * np.sin(TWO_PI * f * t)
    return out


def sawtooth(freq: np.ndarray, sr: int) -> np.ndarray:
    """A glottal-like pulse source: a naive sawtooth following ``freq`` (Hz per sample)."""
    phase = np.cumsum(freq) / sr
    return 2.0 * (phase - np.floor(phase)) - 1.0


def add_at(target: np.ndarray, signal: np.ndarray, start: int) -> None:
    """Add ``signal`` into ``target`` from sample ``start``, cropping at both ends."""
    if start < 0:
        signal = signal[-start:]
        start = 0
    end = min(len(target), start + len(signal))
    if end > start:
        target[start:end] += signal[: end - start]
