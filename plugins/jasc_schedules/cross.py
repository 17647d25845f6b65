"""CrossMTL (003, Fig. 5c): knowledge distillation from an EMA teacher across the tasks' data.

In SoftMTL and HardMTL a head never sees the other task's clips (they carry no label for it). CrossMTL keeps an EMA
teacher of the multitask student (003 follows the mean teacher, ref. [21]) and, on every clip that has no label for
task T, adds the mean squared error between the student's and the teacher's predictions of T's head::

    cross_T = w(step) * MSE(p_student(T | clip), p_teacher(T | clip))      p: softmax (scene) or sigmoid (event frames)

to the SoftMTL / HardMTL loss, so the scene head learns from event clips and the event head from scene clips.
``w(step) = weight * exp(-5 (1 - t)^2)`` with ``t = step / (rampup_epochs * steps per epoch)`` (no ramp-up at 0).
003 gives neither weight nor ramp-up nor decay; they are config fields (``schedule.cross``) with DESED's decay.

``schedule: {name: soft, cross: true}`` is CrossSoftMTL, ``{name: hard, cross: true}`` CrossHardMTL;
``cross: {weight: 1.0, rampup_epochs: 5, decay: 0.999}`` sets the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import BaseModel, Field, field_validator
from torch import Tensor, nn

from jasc_core import TASK_DESCRIPTIONS, Batch, SetupContext, StepContext
from jasc_schedules.ema import EmaTeacher, TeacherMode, exponential_rampup


class CrossConfig(BaseModel):
    """``schedule.cross``: the CrossMTL term's settings (``true`` takes these defaults)."""

    weight: float = Field(1.0, ge=0, description="weight of each cross term after the ramp-up")
    rampup_epochs: float = Field(0.0, ge=0, description="epochs of DESED's exponential ramp-up (0: none)")
    decay: float = Field(0.999, ge=0, le=1, description="EMA decay cap: min(1 - 1/(step + 1), decay)")
    teacher_mode: TeacherMode = Field("train", description="train (DESED) or eval; see jasc_schedules.ema")


class CrossFields(BaseModel):
    """The ``cross`` field of a schedule's Config (SoftMTL's, HardMTL's): subclass it to offer CrossMTL."""

    cross: CrossConfig | None = Field(None, description="CrossMTL (003 Fig. 5c): true or its settings; null: off")

    @field_validator("cross", mode="before")
    @classmethod
    def _true_means_defaults(cls, value: Any) -> Any:
        """``cross: true`` -> default settings, ``false`` / null -> off, a mapping -> those settings."""
        if value is True:
            return CrossConfig()
        return None if value is False else value


def unlabelled_for(task: str, batch: Batch, size: int, device: torch.device) -> Tensor:
    """Boolean ``[B]``: the batch's clips that carry no label of ``task`` (any granularity)."""
    labelled = torch.zeros(size, dtype=torch.bool, device=device)
    for key in TASK_DESCRIPTIONS[task].output_names():
        if key in batch.masks:
            labelled |= batch.masks[key].to(device)
    return ~labelled


def cross_terms(student: Mapping[str, Tensor], teacher: Mapping[str, Tensor], batch: Batch,
                weight: float) -> dict[str, Tensor]:
    """``cross_<task>`` per task whose head has outputs on clips of ``batch`` unlabelled for it (none: absent)."""
    terms: dict[str, Tensor] = {}
    for task, description in TASK_DESCRIPTIONS.items():
        if task not in student:
            continue
        mask = unlabelled_for(task, batch, student[task].shape[0], student[task].device)
        if not bool(mask.any()):
            continue
        mine = description.probabilities(student[task][mask])
        theirs = description.probabilities(teacher[task][mask])
        terms[f"cross_{task}"] = weight * nn.functional.mse_loss(mine, theirs)
    return terms


class CrossTeaching:
    """Mixin for a schedule whose Config subclasses ``CrossFields``: the teacher and the cross terms.

    The schedule's own ``setup`` must call ``super().setup`` last (the ramp-up needs its steps per epoch).
    """

    config: Any
    teacher: EmaTeacher | None = None

    def setup(self, model: nn.Module, context: SetupContext) -> None:
        cross: CrossConfig | None = self.config.cross
        if cross is None:
            return
        self.teacher = EmaTeacher(model, cross.decay, cross.teacher_mode)
        first = self.phases(context)[0]  # type: ignore[attr-defined]
        self._rampup_steps = cross.rampup_epochs * self.epoch_steps(first, context)  # type: ignore[attr-defined]

    def cross_weight(self, step: int) -> float:
        """The weight of each cross term at optimiser step ``step``."""
        return self.config.cross.weight * exponential_rampup(step, self._rampup_steps)

    def extra_losses(self, model: nn.Module, features: Tensor, outputs: Mapping[str, Tensor],
                     batch: Batch, context: StepContext) -> dict[str, Tensor]:
        if self.teacher is None:
            return {}
        teacher = self.teacher.predict(features, context.training)
        return cross_terms(outputs, teacher, batch, self.cross_weight(context.step))

    def after_step(self, model: nn.Module, context: StepContext) -> None:
        if self.teacher is not None:
            self.teacher.update(model, context.step)

    def extra_models(self) -> dict[str, nn.Module]:
        return {} if self.teacher is None else {"teacher": self.teacher.model}
