"""Training schedules: SoftMTL (``soft``), HardMTL (``hard``) and FreezeMTL (``freeze``) of 003, CrossMTL
(``cross`` on soft and hard), and the mean teacher for SED (``mean_teacher``)."""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_schedules.freeze import Freeze
from jasc_schedules.hard import Hard
from jasc_schedules.mean_teacher import MeanTeacher
from jasc_schedules.soft import Soft

__all__ = ["Freeze", "Hard", "MeanTeacher", "Soft"]


@hookimpl
def jasc_register_components(register) -> None:
    for cls in (Soft, Hard, Freeze, MeanTeacher):
        register(cls)
