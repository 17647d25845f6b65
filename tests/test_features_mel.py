"""The mel filterbank shared by both logmel backends, against librosa's (the reference implementation)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_features.mel import hz_to_mel, mel_filterbank, mel_to_hz


@pytest.mark.parametrize("scale", ["slaney", "htk"])
@pytest.mark.parametrize(
    ("sample_rate", "n_fft", "n_mels", "fmin", "fmax"),
    [(44100, 2048, 64, 0.0, None), (16000, 512, 40, 50.0, 7000.0), (22050, 1024, 128, 20.0, 8000.0),
     (32000, 4096, 256, 0.0, 16000.0)],
)
def test_filterbank_equals_librosa(scale, sample_rate, n_fft, n_mels, fmin, fmax) -> None:
    ours = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, scale=scale)
    reference = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=scale == "htk", norm="slaney",
        dtype=np.float64,
    )
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_mel_scale_matches_librosa_and_inverts(scale) -> None:
    hz = np.array([0.0, 100.0, 999.0, 1000.0, 1001.0, 4000.0, 22050.0])
    np.testing.assert_allclose(hz_to_mel(hz, scale), librosa.hz_to_mel(hz, htk=scale == "htk"), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz, scale), scale), hz, rtol=1e-12, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    sample_rate=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    log2_fft=st.integers(9, 12),
    n_mels=st.integers(8, 64),
    fmin_fraction=st.floats(0.0, 0.1),
)
def test_each_band_has_unit_area_in_hz(sample_rate, log2_fft, n_mels, fmin_fraction) -> None:
    # Slaney normalisation: every triangle has area 1 over frequency, so its sum times the bin width is ~1 (up to
    # the sampling of the triangle on the FFT grid).
    n_fft = 2**log2_fft
    fmin = fmin_fraction * sample_rate / 2
    weights = mel_filterbank(sample_rate, n_fft, n_mels, fmin)
    bin_hz = sample_rate / n_fft
    wide = np.flatnonzero((weights > 0).sum(axis=1) >= 8)  # triangles sampled by enough bins to integrate
    np.testing.assert_allclose(weights[wide].sum(axis=1) * bin_hz, 1.0, rtol=0.1)
    assert (weights >= 0).all()
