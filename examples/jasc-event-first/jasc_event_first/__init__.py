"""A schedule that trains event detection alone for the first epochs, then both tasks together.

Written against docs/plugins.md only: two phases, nothing else. Sound event detection learns more slowly than scene
classification (its frame targets are sparse), so giving it the shared encoder to itself for a while is a cheap
curriculum to try.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from jasc_core import Phase, Schedule, hookimpl


class EventFirst(Schedule):
    """Event detection alone for the first epochs, then both tasks together."""

    name = "event_first"

    class Config(BaseModel):
        event_epochs: int = Field(2, ge=1, description="epochs that train event detection alone")

    def phases(self, context):
        alone = self.config.event_epochs
        if alone >= context.epochs:
            raise ValueError(f"event_epochs {alone} leaves none of train.epochs {context.epochs} for both tasks")
        return [Phase("event", alone, tasks=("event",)), Phase("joint", context.epochs - alone)]


@hookimpl
def jasc_register_components(register):
    register(EventFirst)
