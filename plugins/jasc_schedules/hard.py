"""HardMTL (003): each optimiser step trains one task, on that task's data only; the tasks alternate.

With ``ratio: {scene: 1, event: 1}`` the steps go scene, event, scene, event, ...; ``{scene: 1, event: 3}`` gives
scene, event, event, event, ... An epoch is one pass over each task's streams laid end to end (the sum of their
batches per pass), so every clip is seen about once per epoch whatever the ratio.

``cross: true`` adds 003's CrossMTL terms (CrossHardMTL, ``jasc_schedules.cross``): on every step's batch, the head
of the task not trained in that step learns from the teacher on that batch's clips.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from jasc_core import Phase, Schedule, StepPlan, StreamInfo, by_clip_length, streams_with
from jasc_schedules.cross import CrossFields, CrossTeaching


class Hard(CrossTeaching, Schedule):
    """One task per step, alternating at a configurable ratio (003's HardMTL)."""

    name = "hard"
    trains_tasks_jointly = False

    class Config(CrossFields):
        ratio: dict[str, int] = Field(
            default_factory=lambda: {"scene": 1, "event": 1},
            description="steps per task in each round of the alternation, in this order",
        )

    def cycle(self, tasks: tuple[str, ...]) -> list[str]:
        """One round of the alternation: each task of the model as often as its ratio says."""
        return [task for task, count in self.config.ratio.items() if task in tasks for _ in range(count)]

    def steps_per_epoch(self, phase: Phase, streams: Mapping[str, StreamInfo]) -> int:
        return sum(info.batches_per_pass for info in streams_with(streams, self._tasks))

    def plan_step(self, step: int, epoch: int, phase: Phase, streams: Mapping[str, StreamInfo]) -> StepPlan:
        rounds = self.cycle(self._tasks)
        task = rounds[step % len(rounds)]
        return StepPlan(by_clip_length(streams_with(streams, [task]))[:1], frozenset({task}))

    def setup(self, model, context) -> None:
        self._tasks = context.tasks
        if not self.cycle(self._tasks):
            raise ValueError(f"schedule.ratio names none of the model's tasks ({', '.join(self._tasks)})")
        super().setup(model, context)  # CrossMTL's teacher, when schedule.cross is set
