"""The batch: what a data loader yields and what the step, the task descriptions, augmentations and schedules read.

Tensors are keyed by **output name** (``jasc_core.contract.tasks``): ``"scene"``, ``"event"`` (frames) and
``"event/clip"`` (clip-level, weak). A target no clip of the batch has is absent, never zero-filled.

Shapes, for ``B`` clips of ``S`` samples:

- ``waveform`` ``[B, S]`` float, at the feature extractor's sample rate;
- ``index`` ``[B]`` long: each clip's position in its split's clip list;
- ``clip_ids``: each clip's ``clip_id`` (the ``filename`` of DCASE TSV output);
- ``targets[name]``: ``[B]`` class indices (scene), ``[B, T, M]`` frame targets in [0, 1] (strong events, soft where
  the annotation is), ``[B, M]`` clip targets (weak events);
- ``masks[name]`` ``[B]`` bool: True where the clip carries that target;
- ``class_masks[name]`` ``[B, M]`` bool: True for the classes the clip's dataset annotates; absent when every clip
  annotates every class (a clip is neither a positive nor a negative for a class outside its mask);
- ``devices`` / ``datasets``: each clip's recording device and dataset name (None where unknown);
- ``n_classes``: the class count of each task of the run (a mixing augmentation turns class indices into
  probabilities with it).

``batch["waveform"]``-style access still works for plugins written against the dict batch of earlier releases, with a
DeprecationWarning; new code reads attributes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor


@dataclass
class Batch:
    """One batch of clips of one length (see the module docstring for each field's shape)."""

    waveform: Tensor
    index: Tensor
    clip_ids: list[str]
    targets: dict[str, Tensor] = field(default_factory=dict)
    masks: dict[str, Tensor] = field(default_factory=dict)
    class_masks: dict[str, Tensor] = field(default_factory=dict)
    devices: list[str | None] = field(default_factory=list)
    datasets: list[str | None] = field(default_factory=list)
    n_classes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        """The batch with every tensor on ``device`` (non-blocking where the memory is pinned)."""

        def move(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
            return {key: t.to(device, non_blocking=non_blocking) for key, t in tensors.items()}

        return replace(self, waveform=self.waveform.to(device, non_blocking=non_blocking), targets=move(self.targets),
                       masks=move(self.masks), class_masks=move(self.class_masks))

    def pin_memory(self) -> Batch:
        """Pinned copies of the tensors (``DataLoader(pin_memory=True)`` calls this on custom batch types)."""
        return replace(self, waveform=self.waveform.pin_memory(),
                       targets={k: t.pin_memory() for k, t in self.targets.items()},
                       masks={k: m.pin_memory() for k, m in self.masks.items()},
                       class_masks={k: m.pin_memory() for k, m in self.class_masks.items()})

    def replace(self, **changes: object) -> Batch:
        """A copy with some fields changed (augmentations that mix targets return one)."""
        return replace(self, **changes)

    # The dict-style access of earlier releases ---------------------------------------------------------------------

    def __getitem__(self, key: str) -> object:
        _warn_dict_access(key)
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: object = None) -> object:
        _warn_dict_access(key)
        return getattr(self, key, default) if key in _FIELDS else default

    def __contains__(self, key: object) -> bool:
        return key in _FIELDS

    def keys(self) -> Iterator[str]:
        return iter(_FIELDS)


_FIELDS = tuple(f.name for f in fields(Batch))


def _warn_dict_access(key: str) -> None:
    warnings.warn(f"batch[{key!r}]: batches are jasc_core.Batch objects; read batch.{key} (dict-style access will "
                  "be removed in a later release)", DeprecationWarning, stacklevel=3)
