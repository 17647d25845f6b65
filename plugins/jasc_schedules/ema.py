"""The EMA teacher: an exponential moving average of the student's weights (Tarvainen & Valpola 2017, 003 ref. [21]).

After optimiser step ``step`` (0-based) every floating-point parameter moves as DESED's 2023 baseline does::

    decay = min(1 - 1 / (step + 1), max_decay)          # DESED: min(1 - 1/(global_step + 1), 0.999)
    teacher = decay * teacher + (1 - decay) * student

so the first update copies the student and the average lengthens until ``max_decay``. The teacher is a deep copy of
the student's joint model (encoder and heads; the feature extractor is shared) whose parameters never require
gradients, so no optimiser ever holds or moves them.

Buffers (batch-norm running statistics) follow one of two modes:

- ``train`` (DESED's baseline): during training the teacher runs in train mode like the student (dropout on, batch
  statistics), so its running statistics come from its own forward passes; only parameters are averaged.
- ``eval``: the teacher always runs in eval mode, and its floating-point buffers are averaged like the parameters.

Either way integer buffers (``num_batches_tracked``) are copied from the student.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch import Tensor, nn

TeacherMode = Literal["train", "eval"]


def ema_decay(step: int, max_decay: float) -> float:
    """DESED's decay after optimiser step ``step`` (0-based): ``min(1 - 1/(step + 1), max_decay)``."""
    return min(1.0 - 1.0 / (step + 1), max_decay)


def exponential_rampup(step: float, length: float) -> float:
    """DESED's ramp-up factor in [0, 1]: ``exp(-5 (1 - t)^2)`` with ``t = clip(step / length, 0, 1)``; 1 when
    ``length`` is 0 (no ramp-up). The consistency weight is ``max_weight`` times this factor."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


class EmaTeacher:
    """An EMA copy of ``student`` (a ``JointModel``), updated with ``update(student, step)`` after each step."""

    def __init__(self, student: nn.Module, max_decay: float = 0.999, mode: TeacherMode = "train") -> None:
        if not 0.0 <= max_decay <= 1.0:
            raise ValueError(f"EMA max_decay must be in [0, 1], got {max_decay}")
        self.max_decay, self.mode = max_decay, mode
        self.model = copy.deepcopy(student).requires_grad_(False)
        self.model.train(mode == "train" and student.training)

    def predict(self, features: Tensor, training: bool) -> dict[str, Tensor]:
        """The teacher's outputs (logits by output name) on ``features``, without a graph.

        ``training``: whether the student is training now; in ``train`` mode the teacher follows it (DESED).
        """
        self.model.train(self.mode == "train" and training)
        with torch.no_grad():
            return self.model(features.detach())

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> float:
        """Move the teacher towards ``student`` after optimiser step ``step``; returns the decay used."""
        decay = ema_decay(step, self.max_decay)
        for mine, theirs in zip(self.model.parameters(), student.parameters(), strict=True):
            mine.mul_(decay).add_(theirs.detach(), alpha=1.0 - decay)
        for mine, theirs in zip(self.model.buffers(), student.buffers(), strict=True):
            if not mine.dtype.is_floating_point:
                mine.copy_(theirs)
            elif self.mode == "eval":
                mine.mul_(decay).add_(theirs, alpha=1.0 - decay)
            # train mode: floating buffers (running statistics) come from the teacher's own forward passes
        return decay
