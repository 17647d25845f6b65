"""Training schedules: which tasks and parameters each step trains (SoftMTL; HardMTL, CrossMTL, FreezeMTL to come)."""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_schedules.soft import Soft

__all__ = ["Soft"]


@hookimpl
def jasc_register_components(register) -> None:
    for cls in (Soft,):
        register(cls)
