"""Reading audio for datasets: cheap probing, windowed reads, mono mixing and resampling.

Every problem becomes a ``DataError`` that names the file, so a loader can either stop on it or (with
``skip_bad_files``) count it and go on. Durations come from the file header (``soundfile.info``), which is cheap;
only the frames of the window asked for are read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from jasc_core import DataError

# libsndfile reports a data chunk shorter than its header claims as "data : 32000 (should be 19956)"; it then reads
# what is there, so without this check a truncated recording would load silently with its tail missing.
_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says."""

    path: str
    frames: int
    sample_rate: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str) -> AudioInfo:
    """Header facts of an audio file; ``DataError`` naming the file when it is missing, unreadable, empty or
    truncated."""
    if not os.path.exists(path):
        raise DataError(f"{path}: audio file not found")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an audio file")
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"{path}: not a readable audio file ({_short(exc)})") from None
    match = _TRUNCATED.search(info.extra_info or "")
    if match and int(match.group(1)) > int(match.group(2)):
        raise DataError(
            f"{path}: truncated audio file (header announces {match.group(1)} data bytes, file holds "
            f"{match.group(2)})"
        )
    if info.frames <= 0:
        raise DataError(f"{path}: audio file has no samples")
    return AudioInfo(path=path, frames=int(info.frames), sample_rate=int(info.samplerate), channels=int(info.channels))


def read_window(path: str, start: float, duration: float, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform of ``duration`` seconds from ``start`` at ``sample_rate``: exactly
    ``round(duration * sample_rate)`` samples, zero-padded past the end of the recording."""
    n_out = int(round(duration * sample_rate))
    try:
        with sf.SoundFile(path) as handle:
            file_rate = int(handle.samplerate)
            first = int(round(start * file_rate))
            n_in = int(round(duration * file_rate))
            if first < handle.frames:
                handle.seek(first)
                data = handle.read(min(n_in, handle.frames - first), dtype="float32", always_2d=True)
            else:
                data = np.zeros((0, handle.channels), dtype=np.float32)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"{path}: cannot read audio ({_short(exc)})") from None
    # Mixing to mono by the channel mean keeps the level of a dual-mono recording unchanged.
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if file_rate != sample_rate and len(mono):
        mono = soxr.resample(mono, file_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    out = np.zeros(n_out, dtype=np.float32)
    keep = min(n_out, len(mono))
    out[:keep] = mono[:keep]
    return out


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
