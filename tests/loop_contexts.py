"""The loop's context objects for tests that call a weighting scheme or a schedule directly.

Tests pass what the loop passes (``StepContext`` / ``EpochContext``), not dicts: built-in plugins read contexts by
attribute, and a dict would hide a plugin that still indexes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from jasc_core import EpochContext, StepContext


def step_context(step: int = 0, epoch: int = 0, *, seed: int = 0, tasks: Sequence[str] = ("scene", "event"),
                 model: nn.Module | None = None, shared_parameters: Sequence[nn.Parameter] = (),
                 training: bool = True) -> StepContext:
    """A ``StepContext`` with the fields a test does not care about filled in (phase ``train``, an empty model)."""
    return StepContext(step, epoch, "train", seed, tuple(tasks), model if model is not None else nn.Identity(),
                       tuple(shared_parameters), training)


def epoch_context(epoch: int = 0, step: int = 0, train_losses: Mapping[str, float] | None = None) -> EpochContext:
    """An ``EpochContext`` of phase ``train``."""
    return EpochContext(epoch, step, "train", dict(train_losses or {}))
