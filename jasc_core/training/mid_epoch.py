"""Checkpoints inside an epoch: ``train.checkpoint_every`` minutes, and a stopping signal.

An epoch-end checkpoint (``last.pt``) lets a resumed run restart its unfinished epoch; for an epoch of an hour that
is an hour lost per preemption. A mid-epoch checkpoint is the same ``last.pt`` (model, optimiser, LR schedule,
weighting, schedule and teachers, streams' positions, RNG) written at a step boundary, with the epoch's progress
besides: steps done, and each process's loss sums, counts and clips so far (``EpochProgress``). Its ``epoch`` stays
the last *completed* epoch (-1 in the first), so everything that reads epoch ends reads it as before; a resume
continues the next epoch at step ``steps`` with those sums, so that the epoch's record, and the whole run, equal an
uninterrupted run's (CPU, deterministic mode).

Which step boundary: the main process's clock decides when ``checkpoint_every`` has passed, any process's signal
decides a stop, and all processes learn both in one all-reduce per step (``Runtime.max_over_processes``), so they
write (the main process) and stop at the same step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field


@dataclass
class EpochProgress:
    """One process's progress through an epoch: optimiser steps done, loss sums and counts per name, clips read,
    and seconds spent before a resume (so an epoch's time and clips/s count the whole epoch)."""

    steps: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    clips: int = 0
    seconds: float = 0.0

    def add(self, losses: Mapping[str, float], clips: int) -> None:
        """Count one optimiser step's losses and clips."""
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1
        self.clips += clips
        self.steps += 1

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def partial_state(progress: Sequence[EpochProgress], seconds: float) -> dict[str, object]:
    """What a mid-epoch checkpoint stores of the epoch: the steps done and every process's sums, counts and clips
    (in rank order), so that a resume with as many processes continues each one's sums exactly."""
    return {"steps": progress[0].steps, "seconds": seconds,
            "ranks": [{"sums": dict(p.sums), "counts": dict(p.counts), "clips": p.clips} for p in progress]}


def progress_for(partial: Mapping[str, object] | None, rank: int, world_size: int) -> EpochProgress:
    """This process's ``EpochProgress`` from a mid-epoch checkpoint's ``partial`` (None: a fresh epoch).

    With another process count than the checkpoint's, the main process takes every process's sums and counts
    together and the others start from zero: the epoch's means (sums over all processes) are the same up to the
    order of additions.
    """
    if partial is None:
        return EpochProgress()
    ranks = partial["ranks"]
    steps, seconds = int(partial["steps"]), float(partial["seconds"])
    if len(ranks) == world_size:
        mine = ranks[rank]
        return EpochProgress(steps, dict(mine["sums"]), dict(mine["counts"]), int(mine["clips"]), seconds)
    if rank != 0:
        return EpochProgress(steps, seconds=seconds)
    merged = EpochProgress(steps, seconds=seconds)
    for part in ranks:
        for name, value in part["sums"].items():
            merged.sums[name] = merged.sums.get(name, 0.0) + value
            merged.counts[name] = merged.counts.get(name, 0) + int(part["counts"][name])
        merged.clips += int(part["clips"])
    return merged


class CheckpointClock:
    """When ``train.checkpoint_every`` minutes have passed since the last checkpoint (never when it is None)."""

    def __init__(self, minutes: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = None if minutes is None else 60.0 * minutes
        self.clock = clock
        self.last = clock()

    def due(self) -> bool:
        return self.seconds is not None and self.clock() - self.last >= self.seconds

    def reset(self) -> None:
        self.last = self.clock()
