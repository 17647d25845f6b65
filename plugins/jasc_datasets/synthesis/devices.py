"""Simulated recording devices of the TAU-like stand-in: each device colours a clip audibly, as real ones do.

TAU Urban Acoustic Scenes 2022 Mobile was recorded with a reference device ``a`` (binaural in-ear microphones) and
phones/tablets ``b``, ``c`` (real) and ``s1``-``s6`` (simulated from ``a`` by impulse responses); the development
training set has ``a``, ``b``, ``c``, ``s1``-``s3``, and ``s4``-``s6`` appear only in evaluation (unseen devices).
The stand-in keeps that split. Each device is a fixed frequency response (band limits, tilt and one resonance) and a
noise floor (white noise, dB relative to full scale) applied to the clean scene audio; ``a`` is the flat reference.
The numbers are chosen to differ audibly (phone microphones roll off lows below a few hundred Hz and highs above
5-8 kHz; cheap ones hiss), not measured from real devices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import next_fast_len

#: Devices of the training and validation splits (TAU 2022: a, b, c, s1-s3).
SEEN_DEVICES = ("a", "b", "c", "s1", "s2", "s3")
#: Devices that appear only in the evaluation split (TAU 2022: s4-s6).
UNSEEN_DEVICES = ("s4", "s5", "s6")


@dataclass(frozen=True)
class DeviceResponse:
    """A device's colouring: band edges (Hz), tilt (dB/octave above 1 kHz), a resonance and a noise floor."""

    low_hz: float
    high_hz: float
    tilt_db: float
    peak_hz: float
    peak_db: float
    noise_dbfs: float

    def gain(self, freqs: np.ndarray) -> np.ndarray:
        """Linear amplitude gain at ``freqs`` (Hz): second-order-like band edges, tilt and a Gaussian peak."""
        f = np.maximum(freqs, 1.0)
        low = 1.0 / np.sqrt(1.0 + (self.low_hz / f) ** 4)
        high = 1.0 / np.sqrt(1.0 + (f / self.high_hz) ** 4)
        tilt = 10.0 ** (self.tilt_db * np.log2(np.maximum(f, 1000.0) / 1000.0) / 20.0)
        peak = 10.0 ** (self.peak_db * np.exp(-0.5 * (np.log2(f / self.peak_hz) / 0.3) ** 2) / 20.0)
        return low * high * tilt * peak


DEVICES: dict[str, DeviceResponse] = {
    "a": DeviceResponse(20.0, 20000.0, 0.0, 1000.0, 0.0, -90.0),
    "b": DeviceResponse(300.0, 8000.0, -1.0, 2500.0, 6.0, -60.0),
    "c": DeviceResponse(150.0, 6000.0, 1.5, 4000.0, 8.0, -55.0),
    "s1": DeviceResponse(400.0, 10000.0, -2.0, 1500.0, -6.0, -65.0),
    "s2": DeviceResponse(200.0, 5000.0, 0.0, 800.0, 5.0, -58.0),
    "s3": DeviceResponse(500.0, 12000.0, 2.0, 3000.0, -5.0, -62.0),
    "s4": DeviceResponse(250.0, 7000.0, -3.0, 2000.0, 9.0, -52.0),
    "s5": DeviceResponse(600.0, 9000.0, 1.0, 1200.0, 7.0, -57.0),
    "s6": DeviceResponse(100.0, 4000.0, -1.5, 3500.0, -8.0, -50.0),
}


def record_with(device: str, audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` as ``device`` records it: filtered by its response (one FFT), plus its noise floor."""
    response = DEVICES[device]
    n = len(audio)
    m = next_fast_len(n, real=True)
    spectrum = np.fft.rfft(audio, m)
    spectrum *= response.gain(np.fft.rfftfreq(m, 1.0 / sr))
    out = np.fft.irfft(spectrum, m)[:n]
    out += rng.standard_normal(n) * 10.0 ** (response.noise_dbfs / 20.0)
    return np.clip(out, -0.95, 0.95)
