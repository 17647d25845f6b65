"""Mean teacher for SED (Tarvainen & Valpola 2017; the DCASE 2023 Task 4 baseline, DESED_task).

Every step reads one batch joining the strong, weak and unlabelled 10-s streams (DESED 2023's slots: 12 synthetic /
strong, 12 weak, 24 unlabelled clips: ``train.stream_batch_sizes: {strong: 12, weak: 12, unlabelled: 24}``). The
supervised part is the event task's own loss (BCE on strong clips' frames and on weak clips' clip output, see
``jasc_core.contract.tasks``). On top of it, over every clip of the batch, the consistency terms

    consistency_frame = w(step) * MSE(sigmoid(student frames), sigmoid(teacher frames))
    consistency_clip  = w(step) * MSE(sigmoid(student clip),   sigmoid(teacher clip))

with ``w(step) = max_weight * exp(-5 (1 - t)^2)``, ``t = step / (rampup_epochs * steps per epoch)`` clipped to 1
(DESED: ``const_max`` 2, ``n_epochs_warmup`` 50). The teacher is an EMA of the student (``jasc_schedules.ema``),
saved in checkpoints and evaluable with ``jasc evaluate RUN --model teacher``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from jasc_core import Batch, Schedule, SetupContext, StepContext, StreamInfo
from jasc_schedules.ema import EmaTeacher, TeacherMode, exponential_rampup


def event_probabilities(outputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Frame and clip probabilities of the event outputs (a head without a clip output: max over frames)."""
    frames = outputs["event"].float()
    clip = outputs["event/clip"].float() if "event/clip" in outputs else frames.amax(1)
    return torch.sigmoid(frames), torch.sigmoid(clip)


class MeanTeacher(Schedule):
    """Supervised event losses plus a ramped-up consistency MSE towards an EMA teacher (DESED 2023 baseline)."""

    name = "mean_teacher"

    class Config(BaseModel):
        max_weight: float = Field(2.0, ge=0, description="consistency weight after the ramp-up (DESED const_max)")
        rampup_epochs: float = Field(50.0, ge=0, description="epochs of the exponential ramp-up (0: none)")
        decay: float = Field(0.999, ge=0, le=1, description="EMA decay cap: min(1 - 1/(step + 1), decay)")
        teacher_mode: TeacherMode = Field(
            "train", description="train: the teacher runs in train mode and averages parameters (DESED); "
                                 "eval: eval mode, buffers averaged too")

    def setup(self, model: nn.Module, context: SetupContext) -> None:
        if "event" not in context.tasks:
            raise ValueError("mean_teacher trains an event head; the model has none")
        self.teacher = EmaTeacher(model, self.config.decay, self.config.teacher_mode)
        self._rampup_steps = self.config.rampup_epochs * self.epoch_steps(self.phases(context)[0], context)

    def phase_streams(self, phase: Any, streams: Mapping[str, StreamInfo]) -> list[StreamInfo]:
        """The labelled streams of the phase's tasks plus the unlabelled ones of the same clip lengths (they feed the
        consistency). Unlabelled clips of other lengths (an event-only model's 1-s scene clips) stay out."""
        labelled = super().phase_streams(phase, streams)
        lengths = {info.clip_seconds for info in labelled}
        return labelled + [info for _, info in sorted(streams.items())
                           if not info.tasks and info.clip_seconds in lengths and info not in labelled]

    def weight(self, step: int) -> float:
        """The consistency weight at optimiser step ``step`` (DESED's exponential ramp-up to ``max_weight``)."""
        return self.config.max_weight * exponential_rampup(step, self._rampup_steps)

    def extra_losses(self, model: nn.Module, features: Tensor, outputs: Mapping[str, Tensor],
                     batch: Batch, context: StepContext) -> dict[str, Tensor]:
        if "event" not in outputs:
            return {}
        student_frames, student_clip = event_probabilities(outputs)
        teacher_frames, teacher_clip = event_probabilities(self.teacher.predict(features, context.training))
        weight = self.weight(context.step)
        return {"consistency_frame": weight * nn.functional.mse_loss(student_frames, teacher_frames),
                "consistency_clip": weight * nn.functional.mse_loss(student_clip, teacher_clip)}

    def after_step(self, model: nn.Module, context: StepContext) -> None:
        self.teacher.update(model, context.step)

    def extra_models(self) -> dict[str, nn.Module]:
        return {"teacher": self.teacher.model}

    @classmethod
    def check_recipe(cls, block: Any, recipe: Any) -> list[str]:
        return [] if getattr(recipe.model.heads, "event", None) is not None else [
            "mean_teacher trains an event head; the model has none"]
