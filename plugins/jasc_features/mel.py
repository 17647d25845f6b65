"""Mel filterbanks: triangular filters on the mel scale, area-normalised, shared by every STFT backend.

Both backends of ``logmel`` (torch.stft and nnAudio's conv STFT) multiply their power spectrogram by the matrix
built here, so the mel part of the two pipelines is identical by construction. The filters follow Slaney's Auditory
Toolbox, which is also what ``librosa.filters.mel`` computes (``htk=False, norm="slaney"``; with ``htk=True`` the
HTK scale and the same area normalisation).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MelScale = Literal["slaney", "htk"]

# Slaney's scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per factor 6.4).
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float, scale: MelScale = "slaney") -> np.ndarray:
    """Frequencies in Hz -> mels on the given scale."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _SLANEY_HZ_PER_MEL
    # np.maximum keeps the log finite on the branch np.where discards.
    logarithmic = _SLANEY_BREAK_MEL + np.log(np.maximum(hz, _SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_BREAK_HZ, logarithmic, linear)


def mel_to_hz(mel: np.ndarray | float, scale: MelScale = "slaney") -> np.ndarray:
    """Mels on the given scale -> frequencies in Hz (inverse of ``hz_to_mel``)."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (mel - _SLANEY_BREAK_MEL))
    return np.where(mel >= _SLANEY_BREAK_MEL, logarithmic, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
    scale: MelScale = "slaney", norm: Literal["slaney", "none"] = "slaney",
) -> np.ndarray:
    """Mel filterbank ``[n_mels, n_fft // 2 + 1]`` (float64) mapping an STFT power spectrum to mel bands.

    Filter ``m`` is a triangle over FFT bin frequencies, rising from the centre of band ``m - 1`` to the centre of
    band ``m`` and falling to the centre of band ``m + 1``; the ``n_mels + 2`` edge frequencies are equally spaced in
    mels between ``fmin`` and ``fmax``. Each triangle is scaled by ``2 / (upper - lower)`` (Hz) so that its area is
    constant ("slaney" normalisation): a band's output is then a spectral density, independent of its width.
    ``norm="none"`` keeps peak-1 triangles (torchaudio's ``MelSpectrogram`` default, which the CP-Mobile front end
    uses).
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2), scale)
    widths = np.diff(edges_hz)
    # offsets[i, k] = edge i minus bin k, in Hz; the rising and falling slopes of filter m are read from rows m, m + 2.
    offsets = edges_hz[:, None] - bin_hz[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights
