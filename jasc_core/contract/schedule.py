"""The ``Schedule`` component kind: what each step trains on, which parameters train when, and any extra losses.

One loop serves every schedule (``jasc_core.training.loop``). Per run it asks the schedule, in this order:

1. ``setup(model, context)`` once (``SetupContext``: epochs, tasks, the training split's data streams);
2. ``phases(context)``: the run's phases, each with its epochs, trainable parameter groups, streams and selection
   metric. At the start of each phase the loop rebuilds optimiser and LR schedule, resets early stopping and puts
   frozen groups in eval mode (their batch-norm statistics stay put);
3. per epoch, ``epoch_steps(phase, context)``: ``train.steps_per_epoch`` when the recipe fixes it, else
   ``steps_per_epoch(phase, streams)``; per step, ``plan_step(step, epoch, phase)``: which streams feed
   the step's batches and which tasks train;
4. per epoch, ``on_epoch_start(model, epoch)``; per step, after the task losses: ``extra_losses(...)`` (named terms added to the weighted loss, such as a mean
   teacher's consistency); after the optimiser step, ``after_step(model, context)`` (e.g. an EMA update);
5. ``extra_models()`` at any time: models the schedule keeps besides the student (an EMA teacher). They are saved in
   checkpoints and can be evaluated and loaded by name;
6. ``state_dict()`` / ``load_state_dict()`` for resume.

Parameter groups are the model's named groups: ``encoder`` and ``heads.<task>`` (``JointModel.parameter_groups``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from jasc_core.contract.batch import Batch
from jasc_core.contract.components import Component
from jasc_core.contract.context import SetupContext, StepContext, StreamInfo


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs with one set of trainable parameter groups, streams and selection metric.

    ``train``: parameter groups that train (None: every group); the others are frozen and kept in eval mode.
    ``streams``: the streams its steps read (None: every stream). ``select_metric``: the metric that picks the best
    checkpoint in this phase (None: ``train.select_metric``). ``tasks``: the tasks trained (None: every task the
    model has).
    """

    name: str
    epochs: int
    train: tuple[str, ...] | None = None
    streams: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None
    select_metric: str | None = None


@dataclass(frozen=True)
class StepPlan:
    """What one optimiser step trains on.

    ``batches``: one entry per forward pass, each naming the streams whose next batches are concatenated into it
    (every stream of one entry must have the same clip length). ``tasks``: the tasks whose losses count (None: every
    task labelled in the batches that the phase trains).
    """

    batches: tuple[tuple[str, ...], ...]
    tasks: frozenset[str] | None = None


def streams_with(streams: Mapping[str, StreamInfo], tasks: Sequence[str] | None = None) -> list[StreamInfo]:
    """The streams (in name order) whose clips carry labels for any of ``tasks`` (None: for any task)."""
    return [info for _, info in sorted(streams.items()) if info.tasks & set(info.tasks if tasks is None else tasks)]


def by_clip_length(streams: Sequence[StreamInfo]) -> tuple[tuple[str, ...], ...]:
    """Stream names grouped into batches of one clip length each (a batch must have one clip length)."""
    groups: dict[float, list[str]] = {}
    for info in streams:
        groups.setdefault(info.clip_seconds, []).append(info.name)
    return tuple(tuple(names) for _, names in sorted(groups.items()))


class Schedule(Component):
    """Plans training: phases, the streams and tasks of each step, extra losses and extra models.

    The default is one phase over ``train.epochs`` in which every step reads every stream the model's tasks can use
    (one batch per clip length) and trains every labelled task: 003's SoftMTL.
    """

    kind = "schedule"
    #: False for schedules whose steps train one task at a time (HardMTL-style alternation, FreezeMTL phases):
    #: gradient-balancing weightings (GradNorm, PCGrad) need every task in the same step and reject such schedules.
    trains_tasks_jointly: ClassVar[bool] = True

    def setup(self, model: nn.Module, context: SetupContext) -> None:
        """Called once before training (e.g. to build an EMA teacher of ``model``)."""

    def phases(self, context: SetupContext) -> list[Phase]:
        """The run's phases in order; their epochs must add up to ``context.epochs``."""
        return [Phase("train", context.epochs)]

    def steps_per_epoch(self, phase: Phase, streams: Mapping[str, StreamInfo]) -> int:
        """Optimiser steps in one epoch of ``phase``: by default one pass over its longest stream."""
        used = self.phase_streams(phase, streams)
        return max(info.batches_per_pass for info in used)

    def epoch_steps(self, phase: Phase, context: SetupContext) -> int:
        """Optimiser steps in one epoch of ``phase`` as the loop runs it: ``train.steps_per_epoch`` when the recipe
        fixes it (step-matched comparisons: every schedule, every phase the same number of steps per epoch), else
        ``steps_per_epoch``. Schedules that ramp a weight up over epochs convert epochs to steps with this."""
        return context.steps_per_epoch or self.steps_per_epoch(phase, context.streams)

    def plan_step(self, step: int, epoch: int, phase: Phase, streams: Mapping[str, StreamInfo]) -> StepPlan:
        """The batches and tasks of optimiser step ``step`` (0-based over the run)."""
        used = self.phase_streams(phase, streams)
        tasks = frozenset(phase.tasks) if phase.tasks is not None else None
        if type(self).tasks_for_step is not Schedule.tasks_for_step:
            warnings.warn(f"schedule '{self.name}': tasks_for_step is deprecated; override plan_step and return "
                          "StepPlan(batches, tasks)", DeprecationWarning, stacklevel=2)
            tasks = self.tasks_for_step(step, epoch, tasks or frozenset().union(*(info.tasks for info in used)))
        return StepPlan(by_clip_length(used), tasks)

    def tasks_for_step(self, step: int, epoch: int, available: frozenset[str]) -> frozenset[str]:
        """Deprecated since 0.2 (kept for one release): ``plan_step`` says which tasks a step trains."""
        return frozenset(available)

    def phase_streams(self, phase: Phase, streams: Mapping[str, StreamInfo]) -> list[StreamInfo]:
        """The streams a phase reads: those it names, else those with labels for its tasks."""
        if phase.streams is not None:
            return [streams[name] for name in phase.streams]
        return streams_with(streams, phase.tasks)

    def extra_losses(
        self, model: nn.Module, features: Tensor, outputs: Mapping[str, Tensor], batch: Batch,
        context: StepContext,
    ) -> dict[str, Tensor]:
        """Named loss terms added to the weighted task loss for one batch of the step (default: none).

        ``outputs`` are the student's outputs on ``batch`` (every clip, labelled or not), computed from ``features``.
        Each term is checked for NaN and recorded per epoch in ``history.json``.
        """
        return {}

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Called at the start of every training epoch (0-based). Kept from 0.1; freezing belongs in ``phases``."""

    def after_step(self, model: nn.Module, context: StepContext) -> None:
        """Called after each optimiser step (e.g. an EMA teacher update)."""

    def extra_models(self) -> dict[str, nn.Module]:
        """Models the schedule keeps besides the student, by name: each a copy of the student's joint model (encoder
        and heads; the feature extractor is shared). Saved in checkpoints, evaluated with ``--model NAME``."""
        return {}

    def state_dict(self) -> dict[str, object]:
        return {}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore what ``state_dict`` returned (resume)."""
