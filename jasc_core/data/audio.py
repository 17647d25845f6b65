"""Reading audio files for inference: any format soundfile decodes, any sample rate, any channel count.

Inference must not need a dataset plugin (a user points ``jasc predict`` at their own recordings), so the core reads
files itself: soundfile decodes, channels are averaged to mono (the mixdown the dataset loaders use), and soxr
resamples to the model's rate (its "HQ" quality, the soxr default). Every failure is a ``DataError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jasc_core.errors import DataError


def to_mono(audio: np.ndarray) -> np.ndarray:
    """``[samples]`` or ``[samples, channels]`` -> ``[samples]`` float32, channels averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        return audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    if audio.ndim != 1:
        raise DataError(f"audio must be [samples] or [samples, channels], got shape {audio.shape}")
    return audio


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Mono ``audio`` resampled from ``from_rate`` to ``to_rate`` Hz with soxr (a no-op when the rates agree)."""
    if from_rate <= 0:
        raise DataError(f"sample rate must be positive, got {from_rate}")
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    import soxr  # soxr's import is cheap, but only files at another rate need it

    return np.asarray(soxr.resample(audio, from_rate, to_rate), dtype=np.float32)


def prepare_waveform(audio: np.ndarray, sample_rate: int, target_rate: int, name: str = "waveform") -> np.ndarray:
    """An in-memory waveform (``[samples]``, ``[samples, channels]``) as mono float32 at ``target_rate``."""
    mono = to_mono(audio)
    if mono.size == 0:
        raise DataError(f"{name}: no samples (0-length audio)")
    if not np.all(np.isfinite(mono)):
        raise DataError(f"{name}: the audio holds NaN or infinite samples")
    return resample(mono, int(sample_rate), int(target_rate))


def read_audio(path: str | Path, target_rate: int) -> np.ndarray:
    """A file's audio as mono float32 at ``target_rate`` Hz; ``DataError`` naming the file when it cannot be read."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable audio file ({exc})") from None
    return prepare_waveform(audio, rate, target_rate, name=str(path))
