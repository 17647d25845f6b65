"""SoftMTL: every step trains every task, on a batch of each data stream the model's tasks can use (003's SoftMTL;
001's joint training). On joint data (every clip labelled for both tasks) that is one batch per step; on disjoint
data one batch of scene clips and one of event clips, whose losses are weighted together into one step.

``cross: true`` adds 003's CrossMTL terms (CrossSoftMTL, ``jasc_schedules.cross``)."""

from __future__ import annotations

from jasc_core import Schedule
from jasc_schedules.cross import CrossFields, CrossTeaching


class Soft(CrossTeaching, Schedule):
    """Every step trains all tasks labelled in its batches, all parameters all the time (the base plan)."""

    name = "soft"

    class Config(CrossFields):
        pass
