"""Feature extractors: log mel-band energies on the training device (torch.stft or nnAudio backend)."""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_features.logmel import LogMel
from jasc_features.mel import mel_filterbank

__all__ = ["LogMel", "mel_filterbank"]


@hookimpl
def jasc_register_components(register) -> None:
    register(LogMel)
