"""Training: the runtime, data streams, phases, the loop and the run flow (sweeps: ``jasc_core.sweeps``)."""

from __future__ import annotations

from jasc_core.training.loop import Trainer, TrainingParts
from jasc_core.training.run import build_parts, run_recipe

__all__ = ["Trainer", "TrainingParts", "build_parts", "run_recipe"]
