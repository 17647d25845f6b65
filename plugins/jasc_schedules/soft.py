"""SoftMTL: every step trains every task that has labels in the batch (003's SoftMTL; 001's joint training)."""

from __future__ import annotations

from pydantic import BaseModel

from jasc_core import Schedule


class Soft(Schedule):
    """Every step trains all tasks labelled in the batch, all parameters all the time."""

    name = "soft"

    class Config(BaseModel):
        pass

    def tasks_for_step(self, step: int, epoch: int, available: frozenset[str]) -> frozenset[str]:
        return frozenset(available)
