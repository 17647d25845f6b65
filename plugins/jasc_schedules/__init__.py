"""Training schedules: SoftMTL (``soft``), HardMTL (``hard``) and FreezeMTL (``freeze``) of 003."""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_schedules.freeze import Freeze
from jasc_schedules.hard import Hard
from jasc_schedules.soft import Soft

__all__ = ["Freeze", "Hard", "Soft"]


@hookimpl
def jasc_register_components(register) -> None:
    for cls in (Soft, Hard, Freeze):
        register(cls)
