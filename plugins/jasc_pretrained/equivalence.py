"""Seeded weights and fixed test signals for the offline equivalence proof (``tools/pretrained_equivalence.py``).

The official checkpoints cannot be downloaded here, so equivalence with the official code is shown on weights
that both implementations load: every parameter and buffer of a jasc model is overwritten from one seed
(``seeded_state_dict``), the same state dict is loaded into the official model with ``strict=True``, and both run
on signals that need no random generator at all (``fixed_signal``). The tool records the official outputs with the
seed; ``tests/test_pretrained_equivalence.py`` rebuilds the jasc model from the seed alone and compares.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def seeded_state_dict(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A state dict with the keys and shapes of ``model`` and values drawn from ``seed`` (in key order).

    Matrices and kernels get N(0, 1 / fan_in); 1-d ``weight`` s (norm scales) 1 + N(0, 0.1^2); biases and other
    vectors N(0, 0.1^2); BN running variances U(0.5, 1.5). Integer buffers (BN's batch counters) are kept. Every
    value, including batch-norm statistics and norm scales, is thus away from its initial value, so a swapped or
    ignored tensor changes the outputs.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            state[name] = tensor.clone()
            continue
        shape = tensor.shape
        if name.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif tensor.dim() >= 2:
            fan_in = max(1, tensor.numel() // shape[0])
            value = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
        elif name.endswith("weight"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:
            value = 0.1 * torch.randn(shape, generator=generator)
        state[name] = value.to(tensor.dtype)
    return state


def fixed_signal(clips: int, seconds: float, sample_rate: int) -> np.ndarray:
    """Deterministic float32 waveforms ``[clips, samples]`` in [-1, 1] without a random generator: per clip a chirp,
    two amplitude-modulated tones and a burst train, so every mel band and time step has energy."""
    t = np.arange(round(seconds * sample_rate), dtype=np.float64) / sample_rate
    rows = []
    for clip in range(clips):
        f0 = 200.0 * (clip + 1)
        chirp = np.sin(2 * np.pi * (f0 * t + 0.5 * (sample_rate / 4 - f0) / seconds * t**2))
        tones = (np.sin(2 * np.pi * 440.0 * (clip + 1.5) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t))
                 + np.sin(2 * np.pi * 3150.0 / (clip + 1) * t) * np.cos(2 * np.pi * 0.7 * t))
        bursts = np.sin(2 * np.pi * 5777.0 * t) * (np.sin(2 * np.pi * 4.0 * t) > 0.6)
        rows.append(0.3 * chirp + 0.2 * tones + 0.2 * bursts)
    return np.stack(rows).astype(np.float32)
