"""Kaldi's mel filterbank and log-mel "fbank" features, in torch, batched: the front ends BEATs and EfficientAT
were trained on.

BEATs computes its input with ``torchaudio.compliance.kaldi.fbank`` and EfficientAT builds its mel matrix with
``torchaudio.compliance.kaldi.get_mel_banks``; both follow Kaldi's ``compute-fbank-feats`` (feat/mel-computations.cc).
torchaudio does not import beside every torch build, so the two functions are written here from Kaldi's definition
(the equivalence test ``tests/test_pretrained_equivalence.py`` pins them against torchaudio's output):

    mel(f) = 1127 ln(1 + f / 700)                                                   (Kaldi's MelScale)
    triangle b: left, centre, right = mel_low + (b, b+1, b+2) * (mel_high - mel_low) / (n_bins + 1)
    weight of FFT bin k at frequency k * sr / n_fft: max(0, min(rising slope, falling slope)) in the mel domain

and ``fbank`` frames the waveform (25 ms windows every 10 ms, only whole frames: Kaldi's ``snip_edges``), removes
each frame's DC offset, pre-emphasises (0.97, the first sample repeated), applies the Povey window (Hann ** 0.85),
zero-pads to a power of two, and takes ``log(max(power spectrum @ filterbank, float32 eps))``. No dither (torchaudio's
default, and what BEATs uses).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: numeric_limits<float>::epsilon(): Kaldi's floor before the log.
FLOAT_EPS = float(torch.finfo(torch.float32).eps)


def mel_scale(freq: Tensor | float) -> Tensor | float:
    """Hz -> Kaldi mel."""
    if isinstance(freq, Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log(1.0 + freq / 700.0)


def kaldi_mel_banks(n_bins: int, n_fft: int, sample_rate: float, low_freq: float, high_freq: float) -> Tensor:
    """Triangular mel filters ``[n_bins, n_fft // 2]`` (no VTLN warp); ``high_freq <= 0`` counts from Nyquist.

    The last FFT bin (Nyquist) has no column, as in Kaldi: callers pad one zero column for a ``n_fft // 2 + 1`` bin
    spectrum.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < high_freq <= nyquist):
        raise ValueError(f"mel band edges must satisfy 0 <= low ({low_freq}) < high ({high_freq}) <= Nyquist ({nyquist})")
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high_freq)
    delta = (mel_high - mel_low) / (n_bins + 1)
    band = torch.arange(n_bins, dtype=torch.float32).unsqueeze(1)
    left, centre, right = (mel_low + (band + offset) * delta for offset in (0.0, 1.0, 2.0))
    fft_mel = mel_scale((sample_rate / n_fft) * torch.arange(n_fft // 2, dtype=torch.float32)).unsqueeze(0)
    rising = (fft_mel - left) / (centre - left)
    falling = (right - fft_mel) / (right - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


def kaldi_fbank(waveform: Tensor, *, sample_rate: int = 16000, n_mels: int = 128, frame_ms: float = 25.0,
                shift_ms: float = 10.0, low_freq: float = 20.0, high_freq: float = 0.0,
                preemphasis: float = 0.97) -> Tensor:
    """Waveforms ``[B, samples]`` -> Kaldi log-mel fbank ``[B, frames, n_mels]`` (frames = 1 + (samples - win) // hop)."""
    window = int(sample_rate * frame_ms * 0.001)
    shift = int(sample_rate * shift_ms * 0.001)
    if waveform.shape[-1] < window:
        raise ValueError(f"a waveform of {waveform.shape[-1]} samples is shorter than one {window}-sample frame")
    n_fft = 1 << (window - 1).bit_length()
    frames = waveform.unfold(-1, window, shift)  # [B, m, window]
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = frames - preemphasis * previous
    povey = torch.hann_window(window, periodic=False, dtype=frames.dtype, device=frames.device).pow(0.85)
    frames = F.pad(frames * povey, (0, n_fft - window))
    power = torch.fft.rfft(frames).abs().pow(2.0)  # [B, m, n_fft // 2 + 1]
    banks = kaldi_mel_banks(n_mels, n_fft, sample_rate, low_freq, high_freq).to(power)
    banks = F.pad(banks, (0, 1))
    return torch.clamp(power @ banks.T, min=FLOAT_EPS).log()


def kaldi_num_frames(num_samples: int, *, sample_rate: int = 16000, frame_ms: float = 25.0,
                     shift_ms: float = 10.0) -> int:
    """Frames ``kaldi_fbank`` gives for ``num_samples`` samples (0 when shorter than one window)."""
    window, shift = int(sample_rate * frame_ms * 0.001), int(sample_rate * shift_ms * 0.001)
    return 0 if num_samples < window else 1 + (num_samples - window) // shift
