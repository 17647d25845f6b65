"""The ``logmel`` feature extractor: waveform batches -> log mel-band energies, on the training device.

Pipeline: frame the waveform (one frame per hop, see ``LogMel.frame_bounds``; or centred frames, ``center``), Hann
window, STFT (torch.stft or nnAudio's conv1d STFT), power spectrum ``|X|^power``, the shared mel filterbank of
``jasc_features.mel``, ``log(mel + log_offset)``, then per-band standardisation with statistics fitted on the training
split. The ``torchaudio`` backend runs ``torchaudio.transforms.MelSpectrogram`` (STFT and its own filterbank) on the
same framed waveform instead; it is used only where torchaudio imports beside the installed torch.

The CP-Mobile / DCASE 2024 Task 1 front end (32 kHz, 4096-point FFT, 3072-sample window, 500-sample hop, 256 mels,
``log(x + 1e-5)``, torchaudio defaults: HTK scale, unnormalised triangles, centred frames, 65 frames per second)::

    {name: logmel, sample_rate: 32000, n_fft: 4096, win_samples: 3072, hop_samples: 500, n_mels: 256,
     mel_scale: htk, mel_norm: none, center: true, log_offset: 1.0e-5}
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator
from torch import Tensor, nn

from jasc_core import ConfigError, DataError, FeatureExtractor
from jasc_features.mel import mel_filterbank
from jasc_features.moments import RunningMoments

#: Floor of the per-band standard deviation: a band that never varies on the training split (e.g. above the
#: bandwidth of the data) is centred but not blown up by a division by ~0. In units of the natural log, so 1e-3 is a
#: 0.1 % change of the band energy.
MIN_STD = 1e-3
#: Window and hop when neither the ms nor the samples field gives them.
DEFAULT_WIN_MS, DEFAULT_HOP_MS = 40.0, 20.0


@contextlib.contextmanager
def ieee_float32(device: torch.device) -> Iterator[None]:
    """Full float32 precision for CUDA convolutions and matmuls inside the block, restoring the settings after.

    cuDNN convolutions run in TF32 (10-bit mantissa) by default on Ampere and later, and a recipe may switch
    matmuls to TF32 too: the nnAudio STFT (a conv1d) and the mel projection would then be off by ~1e-3. Where torch
    has the ``fp32_precision`` settings, only they are read and written: torch (2.13 here) raises when a legacy
    ``allow_tf32`` flag is read after the new settings were used.
    """
    if device.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        saved = conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
        conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = "ieee", "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = saved
    else:
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class LogMel(FeatureExtractor):
    """Log mel-band energies, per-band standardised; torch.stft or nnAudio STFT backend."""

    name = "logmel"

    class Config(BaseModel):
        sample_rate: int = Field(44100, gt=0, description="sample rate of the input waveforms in Hz")
        # None = the default (40 / 20 ms) unless the length is given in samples: a resolved recipe dumps every field,
        # so a numeric default here would read as "both given" once win_samples is set.
        win_ms: float | None = Field(None, gt=0, description="analysis window length in ms (default 40, or give "
                                                              "win_samples)")
        hop_ms: float | None = Field(None, gt=0, description="frame hop in ms (default 20, or give hop_samples)")
        win_samples: int | None = Field(None, gt=0, description="window length in samples, instead of win_ms")
        hop_samples: int | None = Field(None, gt=0, description="frame hop in samples, instead of hop_ms")
        n_fft: int | None = Field(
            None, gt=0, description="FFT size in samples, >= the window; default: next power of two >= the window"
        )
        n_mels: int = Field(64, ge=1, description="number of mel bands (the feature dimension)")
        fmin: float = Field(0.0, ge=0, description="lower edge of the lowest mel band in Hz")
        fmax: float | None = Field(None, gt=0, description="upper edge of the highest mel band in Hz; default sr/2")
        mel_scale: Literal["slaney", "htk"] = Field(
            "slaney", description="mel scale of the band edges (filters are area-normalised either way; as librosa)"
        )
        mel_norm: Literal["slaney", "none"] = Field(
            "slaney", description="mel filter weights: slaney = constant area (librosa); none = peak 1 (torchaudio)"
        )
        center: bool = Field(
            False, description="centred frames as torch.stft / torchaudio center=True: 1 + samples // hop frames, "
                               "frame t centred on sample t * hop (default: one frame per whole hop)",
        )
        power: float = Field(2.0, gt=0, description="exponent of the STFT magnitude: 2 = power, 1 = magnitude")
        log_offset: float = Field(1e-8, gt=0, description="added before the natural log: log(mel + log_offset)")
        normalize: bool = Field(True, description="standardise each mel band with training-split mean and std")
        backend: Literal["auto", "torch", "nnaudio", "torchaudio"] = Field(
            "auto", description="STFT implementation: auto = nnaudio on CUDA, torch elsewhere; torchaudio = its "
                                "MelSpectrogram (where torchaudio imports)"
        )

        @field_validator("win_ms", "hop_ms")
        @classmethod
        def _at_least_one_sample(cls, ms: float | None, info: ValidationInfo) -> float | None:
            sample_rate = info.data.get("sample_rate")
            if ms is not None and sample_rate is not None and round(ms * sample_rate / 1000) < 1:
                raise ValueError(f"is less than one sample at {sample_rate} Hz")
            return ms

        @field_validator("n_fft")
        @classmethod
        def _fft_covers_window(cls, n_fft: int | None, info: ValidationInfo) -> int | None:
            sample_rate, win_ms = info.data.get("sample_rate"), info.data.get("win_ms") or DEFAULT_WIN_MS
            window = info.data.get("win_samples")
            if window is None and sample_rate is not None and win_ms is not None:
                window = round(win_ms * sample_rate / 1000)
            if n_fft is not None and window is not None and n_fft < window:
                raise ValueError(f"is shorter than the window ({window} samples)")
            return n_fft

        @field_validator("fmin")
        @classmethod
        def _fmin_below_nyquist(cls, fmin: float, info: ValidationInfo) -> float:
            sample_rate = info.data.get("sample_rate")
            if sample_rate is not None and fmin >= sample_rate / 2:
                raise ValueError(f"must be below sample_rate / 2 = {sample_rate / 2:g} Hz")
            return fmin

        @field_validator("fmax")
        @classmethod
        def _fmax_within_band(cls, fmax: float | None, info: ValidationInfo) -> float | None:
            if fmax is None:
                return fmax
            sample_rate, fmin = info.data.get("sample_rate"), info.data.get("fmin")
            if sample_rate is not None and fmax > sample_rate / 2:
                raise ValueError(f"must be at most sample_rate / 2 = {sample_rate / 2:g} Hz (Nyquist)")
            if fmin is not None and fmax <= fmin:
                raise ValueError(f"must be above fmin = {fmin:g} Hz")
            return fmax

        @model_validator(mode="after")
        def _one_length_unit(self) -> LogMel.Config:
            for unit in ("win", "hop"):
                if getattr(self, f"{unit}_samples") is not None and getattr(self, f"{unit}_ms") is not None:
                    raise ValueError(f"give {unit}_ms or {unit}_samples, not both")
            if self.hop_length > self.win_length:
                # Consecutive windows would leave a gap: the samples between them never reach a feature.
                raise ValueError(f"{self._length_text('hop')} is larger than {self._length_text('win')}: the "
                                 f"samples between consecutive windows would never be analysed; use a hop <= window")
            return self

        def _length_text(self, unit: str) -> str:
            """How the user gave a length, e.g. ``hop_ms = 50 (800 samples)`` or ``win_samples = 640``."""
            samples = getattr(self, f"{unit}_samples")
            if samples is not None:
                return f"{unit}_samples = {samples}"
            length = self.hop_length if unit == "hop" else self.win_length
            return f"{unit}_ms = {getattr(self, f'{unit}_ms'):g} ({length} samples)"

        @property
        def win_length(self) -> int:
            """Window length in samples."""
            if self.win_samples is not None:
                return self.win_samples
            return round((self.win_ms or DEFAULT_WIN_MS) * self.sample_rate / 1000)

        @property
        def hop_length(self) -> int:
            """Hop in samples."""
            if self.hop_samples is not None:
                return self.hop_samples
            return round((self.hop_ms or DEFAULT_HOP_MS) * self.sample_rate / 1000)

        @property
        def fft_length(self) -> int:
            """FFT size in samples."""
            return self.n_fft if self.n_fft is not None else 1 << (self.win_length - 1).bit_length()

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.sample_rate = cfg.sample_rate
        self.win_length = cfg.win_length
        self.hop_length = cfg.hop_length
        self.n_fft = cfg.fft_length
        self.hop_seconds = self.hop_length / self.sample_rate
        self.n_features = cfg.n_mels

        mel = self._mel_basis()
        empty = np.flatnonzero(mel.max(axis=1) <= 0)
        if empty.size:
            raise ConfigError(
                f"features.n_mels: {cfg.n_mels} mel bands are too many for n_fft={self.n_fft} between fmin and fmax: "
                f"band {int(empty[0])} covers no FFT bin; lower n_mels or raise n_fft"
            )
        # Derived from the config, so not saved (persistent=False): checkpoints stay small and do not depend on the
        # backend. The normalisation statistics below are what the model learns from data, and are saved.
        self.register_buffer("mel_basis", torch.tensor(mel, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(self.win_length, periodic=True), persistent=False)
        self.register_buffer("norm_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("norm_std", torch.ones(cfg.n_mels))
        self.register_buffer("norm_fitted", torch.tensor(False))
        # nnAudio's import costs seconds and its kernels megabytes: built now only when it is the only backend,
        # otherwise on the first CUDA batch ("auto").
        self.nnaudio_stft: nn.Module | None = None
        self.torchaudio_mel: nn.Module | None = None  # built on first use (backend torchaudio)
        if cfg.backend == "nnaudio":
            self.nnaudio_stft = self._build_nnaudio_stft()

    def _mel_basis(self) -> np.ndarray:
        cfg = self.config
        return mel_filterbank(cfg.sample_rate, self.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax, cfg.mel_scale,
                              cfg.mel_norm)

    def _restore_float32_filters(self, device: torch.device) -> None:
        """Rebuild the derived filters in float32 if a ``model.to(torch.bfloat16)`` (or similar) cast them.

        They are functions of the config, so rebuilding is exact, where casting back would keep bf16's rounding.
        """
        # Outside inference mode, so that filters rebuilt during an evaluation stay usable in training.
        with torch.inference_mode(False):
            if self.mel_basis.dtype != torch.float32:
                self.mel_basis = torch.tensor(self._mel_basis(), dtype=torch.float32, device=device)
            if self.window.dtype != torch.float32:
                self.window = torch.hann_window(self.win_length, periodic=True, device=device)
            if self.nnaudio_stft is not None and self.nnaudio_stft.wsin.dtype != torch.float32:
                self.nnaudio_stft = self._build_nnaudio_stft().to(device)

    # -- framing ------------------------------------------------------------------------------------------------------

    def num_frames(self, num_samples: int) -> int:
        """Frames for a waveform of ``num_samples`` samples: one per whole hop (500 for 10 s at a 20-ms hop), one more
        with ``center`` (65 for 1 s at 32 kHz and a 500-sample hop)."""
        return num_samples // self.hop_length + (1 if self.config.center else 0)

    def frame_bounds(self, frame: int) -> tuple[float, float]:
        """The time span in seconds that frame ``frame`` stands for (its label interval): ``[t*hop, (t+1)*hop)``.

        The analysis window of frame t is centred on the middle of that span, ``(t + 1/2) * hop``; with ``center``
        it is centred on ``t * hop``, half a hop earlier, and the extra last frame covers the clip's tail.
        """
        return frame * self.hop_seconds, (frame + 1) * self.hop_seconds

    def _padded(self, waveform: Tensor) -> Tensor:
        """``[B, N]`` -> ``[B, 1, L]`` such that un-centred framing (frame t = samples ``t*hop .. t*hop + n_fft``)
        yields exactly ``num_frames(N)`` frames, frame t centred on sample ``t*hop + hop//2``."""
        num_samples = waveform.shape[-1]
        frames = self.num_frames(num_samples)
        # Frame t's window starts n_fft // 2 before its centre: t * hop (center) or t * hop + hop // 2.
        first = (0 if self.config.center else self.hop_length // 2) - self.n_fft // 2  # first sample of frame 0, relative to the waveform
        last = first + (frames - 1) * self.hop_length + self.n_fft  # one past the last sample of the last frame
        left, right = -first, last - num_samples
        if frames < 1 or max(left, right) >= num_samples:
            raise DataError(
                f"logmel: a waveform of {num_samples} samples is too short for hop {self.hop_length} and n_fft "
                f"{self.n_fft} at {self.sample_rate} Hz (needs more than {max(self.hop_length, left, right)} samples)"
            )
        x = waveform.unsqueeze(1)
        # Reflect padding where the frames reach past the signal (like librosa's centred STFT); a negative amount
        # crops instead (a window shorter than the hop, or the samples after the last whole hop).
        x = x[..., max(-left, 0) : num_samples + min(right, 0)]
        if left > 0 or right > 0:
            x = F.pad(x, (max(left, 0), max(right, 0)), mode="reflect")
        return x

    # -- spectrogram --------------------------------------------------------------------------------------------------

    def backend_for(self, device: torch.device) -> str:
        """The backend used for waveforms on ``device``."""
        if self.config.backend == "auto":
            return "nnaudio" if device.type == "cuda" else "torch"
        return self.config.backend

    def _build_nnaudio_stft(self) -> nn.Module:
        from nnAudio.features import STFT

        # Same Hann window (periodic, centred in n_fft) and the same un-centred framing as the torch backend: the
        # padding is done by _padded for both.
        stft = STFT(
            n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length, window="hann", center=False,
            sr=self.sample_rate, output_format="Complex", verbose=False,
        )
        for name, buffer in list(stft.named_buffers(recurse=False)):
            # Its Fourier kernels are a function of the config: keep them out of the state_dict.
            delattr(stft, name)
            stft.register_buffer(name, buffer, persistent=False)
        return stft

    def _torchaudio_mel(self, padded: Tensor) -> Tensor:
        """``[B, 1, L]`` -> mel energies ``[B, frames, n_mels]`` by ``torchaudio.transforms.MelSpectrogram``.

        It runs on the waveform ``_padded`` framed, with ``center=False``, so its frames are the other backends'.
        Its filterbank is torchaudio's own (``melscale_fbanks``), built with the same scale and normalisation.
        """
        try:
            import torchaudio
        except Exception as exc:  # an ImportError, or an OSError from a CUDA build beside a CPU torch
            raise ConfigError(
                f"features.backend: torchaudio does not import beside torch {torch.__version__} ({exc}); use "
                f"backend torch or install a torchaudio build that matches torch"
            ) from None
        cfg = self.config
        if self.torchaudio_mel is None:
            with torch.inference_mode(False):
                self.torchaudio_mel = torchaudio.transforms.MelSpectrogram(
                    sample_rate=cfg.sample_rate, n_fft=self.n_fft, win_length=self.win_length,
                    hop_length=self.hop_length, f_min=cfg.fmin, f_max=cfg.fmax, n_mels=cfg.n_mels, power=cfg.power,
                    center=False, norm="slaney" if cfg.mel_norm == "slaney" else None, mel_scale=cfg.mel_scale,
                ).to(padded.device)
                for module in self.torchaudio_mel.modules():
                    # Its window and filterbank are functions of the config: keep them out of the state_dict.
                    for name, buffer in list(module.named_buffers(recurse=False)):
                        delattr(module, name)
                        module.register_buffer(name, buffer, persistent=False)
        return self.torchaudio_mel(padded.squeeze(1)).transpose(1, 2)

    def _power_spectrogram(self, padded: Tensor) -> Tensor:
        """``[B, 1, L]`` -> ``|STFT|^power`` ``[B, frames, n_fft // 2 + 1]`` (time-major, like the features)."""
        if self.backend_for(padded.device) == "nnaudio":
            if self.nnaudio_stft is None:  # "auto" on its first CUDA batch, maybe inside an evaluation
                with torch.inference_mode(False):
                    self.nnaudio_stft = self._build_nnaudio_stft().to(padded.device)
            # [B, bins, frames, 2]: real and (negated) imaginary parts
            parts = self.nnaudio_stft(padded).transpose(1, 2)
        else:
            spec = torch.stft(
                padded.squeeze(1), self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                window=self.window, center=False, return_complex=True,
            )
            # torch.stft's [B, bins, frames] is a transposed view of a time-major buffer: undo the view, not the data.
            parts = torch.view_as_real(spec.transpose(1, 2))
        # re^2 + im^2 into one new tensor: on CPU ~2x faster than a sum over the trailing axis of size 2.
        squared = parts[..., 0].square()
        squared.addcmul_(parts[..., 1], parts[..., 1])
        return squared if self.config.power == 2.0 else squared.pow_(self.config.power / 2)

    def log_mel(self, waveform: Tensor) -> Tensor:
        """Un-normalised log mel energies ``[B, frames, n_mels]`` (float32) of waveforms ``[B, samples]``."""
        if waveform.dim() != 2:
            raise ValueError(f"logmel expects waveforms [batch, samples], got shape {tuple(waveform.shape)}")
        # Features are computed in float32 whatever the autocast context or the input dtype: bf16 has 8 bits of
        # mantissa, too few for an STFT of 2048 taps.
        self._restore_float32_filters(waveform.device)
        with torch.autocast(device_type=waveform.device.type, enabled=False), ieee_float32(waveform.device):
            padded = self._padded(waveform.float())
            if self.backend_for(waveform.device) == "torchaudio":
                mel = self._torchaudio_mel(padded)
            else:
                mel = torch.matmul(self._power_spectrogram(padded), self.mel_basis.T)  # [B, frames, n_mels]
            return torch.log(mel + self.config.log_offset)

    def forward(self, waveform: Tensor) -> Tensor:
        """Waveforms ``[B, samples]`` -> features ``[B, num_frames(samples), n_mels]`` (float32)."""
        features = self.log_mel(waveform)
        if self.config.normalize:
            # Unfitted statistics are 0 and 1 (the identity), so no test of norm_fitted, which would cost a device
            # synchronisation per batch on CUDA.
            features = (features - self.norm_mean.float()) / self.norm_std.float()
        return features

    # -- normalisation ------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def fit_normalization(self, batches: Iterable[Tensor]) -> None:
        """Per-band mean and std of the log mel energies over all frames of ``batches`` (waveforms ``[B, samples]``).

        Streams: one batch in memory at a time, moments merged in float64. The result lives in the buffers
        ``norm_mean``, ``norm_std`` and ``norm_fitted``, so it is saved and restored with the model's state_dict.
        Does nothing when ``normalize`` is false.
        """
        if not self.config.normalize:
            return
        device = self.norm_mean.device  # the device the module lives on
        moments = RunningMoments(self.n_features)
        for batch in batches:
            waveform = torch.as_tensor(batch).to(device)
            moments.update(self.log_mel(waveform).reshape(-1, self.n_features))
        if moments.count == 0:
            raise DataError("logmel: no training audio to compute the normalisation statistics from")
        std = moments.variance.sqrt().clamp_min(MIN_STD)
        self.norm_mean.copy_(moments.mean.to(self.norm_mean))
        self.norm_std.copy_(std.to(self.norm_std))
        self.norm_fitted.fill_(True)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, win={self.win_length}, hop={self.hop_length}, n_fft={self.n_fft}, "
            f"n_mels={self.n_features}, backend={self.config.backend}, fitted={bool(self.norm_fitted)}"
        )

