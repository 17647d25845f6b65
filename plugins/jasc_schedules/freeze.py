"""FreezeMTL (003): train the encoder and the first task's head on the first task's data; then freeze both (their
batch-norm statistics too) and train the second task's head on the second task's data.

``order: [event, scene]`` is 003's FreezeMTL (SED, ASC); ``[scene, event]`` the other order. The second phase
starts from the best checkpoint of the first (the loop does that at every phase boundary) and each phase selects on
its own task's metric.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from jasc_core import TASK_DESCRIPTIONS, Phase, Schedule, SetupContext


class Freeze(Schedule):
    """First task with the encoder, then the second task's head on a frozen encoder (003's FreezeMTL)."""

    name = "freeze"
    trains_tasks_jointly = False

    class Config(BaseModel):
        order: list[str] = Field(default_factory=lambda: ["event", "scene"], description="the tasks in training order")
        first_epochs: int | None = Field(
            None, ge=1, description="epochs of the first phase (default: half of train.epochs, rounded up)"
        )

        @field_validator("order")
        @classmethod
        def _two_tasks(cls, order: list[str]) -> list[str]:
            if sorted(order) != sorted(TASK_DESCRIPTIONS):
                raise ValueError(f"expected each task once, e.g. [event, scene]; got {order}")
            return order

    def phases(self, context: SetupContext) -> list[Phase]:
        first, second = self.config.order
        epochs = self.config.first_epochs or -(-context.epochs // 2)
        if epochs >= context.epochs:
            raise ValueError(f"schedule.first_epochs {epochs} leaves no epoch of train.epochs {context.epochs} "
                             f"for the second task")
        metric = {task: f"val/{task}/{TASK_DESCRIPTIONS[task].validation_metrics[0]}" for task in (first, second)}
        return [
            Phase(f"{first}", epochs, train=("encoder", f"heads.{first}"), tasks=(first,),
                  select_metric=metric[first]),
            Phase(f"{second}", context.epochs - epochs, train=(f"heads.{second}",), tasks=(second,),
                  select_metric=metric[second]),
        ]

    @classmethod
    def check_recipe(cls, block, recipe) -> list[str]:
        heads = recipe.model.heads
        missing = [task for task in block.order if getattr(heads, task, None) is None]
        return [f"freeze trains both tasks in turn; the model has no {', '.join(missing)} head"] if missing else []
