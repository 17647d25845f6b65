"""The typed objects the loop hands to weighting schemes and schedules (instead of untyped dicts).

Each is a frozen dataclass, and attribute access (``context.step``) is the contract. For plugins written against the
dict contexts of earlier releases they also answer ``context["key"]`` and ``context.get("key")`` with the attribute of
that name, with a DeprecationWarning naming the attribute to read instead (as ``Batch`` does).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import nn


class _ReadsLikeADict:
    """``context["step"]`` and ``context.get("step")`` for plugins written against the dict contexts (deprecated)."""

    def __getitem__(self, key: str) -> object:
        self._warn_dict_access(key)
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: object = None) -> object:
        self._warn_dict_access(key)
        return getattr(self, key) if key in self else default

    def _warn_dict_access(self, key: object) -> None:
        kind = type(self).__name__
        instead = (f"read context.{key}" if key in self else
                   f"it has no field {key!r} (fields: {', '.join(f.name for f in fields(self))})")  # type: ignore[arg-type]
        # stacklevel 3: the warning points at the plugin's line that indexed the context, not at this helper.
        warnings.warn(f"context[{key!r}]: contexts are jasc_core.{kind} objects; {instead} (dict-style access will "
                      "be removed in a later release)", DeprecationWarning, stacklevel=3)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in {f.name for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class SetupContext(_ReadsLikeADict):
    """What a schedule learns once before training (``Schedule.setup``)."""

    epochs: int  # training epochs in total (``train.epochs``)
    tasks: tuple[str, ...]  # tasks the model has a head for
    streams: Mapping[str, StreamInfo]  # the training split's data streams by name
    device: torch.device
    seed: int
    #: ``train.steps_per_epoch``: optimiser steps in every epoch of every phase, or None when the schedule decides
    #: (``Schedule.steps_per_epoch``). ``Schedule.epoch_steps`` applies it.
    steps_per_epoch: int | None = None


@dataclass(frozen=True)
class StepContext(_ReadsLikeADict):
    """One optimiser step, as weighting schemes (``combine``, ``combine_gradients``) and schedules see it."""

    step: int  # optimiser steps taken before this one (0-based, over the whole run)
    epoch: int  # 0-based
    phase: str  # name of the current phase
    seed: int  # the recipe's seed
    tasks: tuple[str, ...]  # tasks whose losses this step uses
    model: nn.Module  # the joint model (encoder + heads), unwrapped
    #: Trainable encoder parameters: what per-task gradients are taken with respect to (GradNorm, PCGrad).
    shared_parameters: Sequence[nn.Parameter] = ()
    training: bool = True


@dataclass(frozen=True)
class EpochContext(_ReadsLikeADict):
    """The end of a training epoch (``Weighting.on_epoch_end``)."""

    epoch: int
    step: int
    phase: str
    #: Epoch mean of each task's unweighted loss over the steps that had that task.
    train_losses: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamInfo:
    """A data stream of the training split: the clips that carry the same kind of labels and clip length.

    ``name`` joins the label kinds of its clips (``scene``, ``strong``, ``weak``, ``scene+strong``) or is
    ``unlabelled``; when clips of one label kind come in several lengths, each length is its own stream
    (``strong@10s``). ``tasks`` are the tasks its clips have labels for.
    """

    name: str
    tasks: frozenset[str]
    clip_seconds: float
    n_clips: int
    batch_size: int

    @property
    def batches_per_pass(self) -> int:
        """Batches in one pass over the stream (the last one may be short)."""
        return -(-self.n_clips // self.batch_size)
