"""From a clip list to training batches: waveforms plus per-task targets and label masks.

Frame rule for event targets (strong labels). With hop ``h`` seconds, frame ``t`` covers ``[t*h, (t+1)*h)``; a frame
is active for a class when an event of that class overlaps it, i.e. ``onset < (t+1)*h`` and ``offset > t*h``. So an
event marks frames ``floor(onset/h)`` to ``ceil(offset/h) - 1`` (clipped to the clip's frames); an event that ends
exactly on a frame boundary does not mark the next frame. This is the rule the evaluation uses to turn reference
events into frame targets too, so training targets and frame-level metrics agree.

A clip without labels for a task (``scene is None`` / ``events is None``) gets a placeholder target and a ``False``
mask entry; the engine computes that task's loss on the clips whose mask is set, and drops the task for a batch where
no clip has it (never zero-filled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jasc_core.contract.components import Dataset
from jasc_core.contract.data import Clip, ClipList
from jasc_core.errors import DataError


def event_roll(clip: Clip, labels: Sequence[str], n_frames: int, hop_seconds: float) -> np.ndarray:
    """Binary frame targets ``[n_frames, len(labels)]`` of a clip's events (frame rule in the module docstring)."""
    roll = np.zeros((n_frames, len(labels)), dtype=np.float32)
    index = {label: i for i, label in enumerate(labels)}
    for event in clip.events or ():
        column = index.get(event.label)
        if column is None:
            raise DataError(f"clip '{clip.clip_id}': event label '{event.label}' is not in {list(labels)}")
        # A tiny tolerance keeps float noise (0.6 / 0.02 = 29.999...) from moving a boundary by one frame.
        first = max(0, math.floor(event.onset / hop_seconds + 1e-6))
        last = min(n_frames, math.ceil(event.offset / hop_seconds - 1e-6))
        if last > first:
            roll[first:last, column] = 1.0
    return roll


class ClipDataset(torch.utils.data.Dataset):
    """A torch dataset over a ``ClipList``: each item is a dict with the waveform and the targets it has.

    ``cache`` keeps decoded waveforms in memory after first use (small datasets, several epochs).
    """

    def __init__(
        self,
        clips: ClipList,
        source: Dataset,
        *,
        sample_rate: int,
        hop_seconds: float,
        n_frames_for: Any,
        scene_labels: Sequence[str] | None = None,
        event_labels: Sequence[str] | None = None,
        cache: bool = False,
    ) -> None:
        self.clips = clips
        self.source = source
        self.sample_rate = sample_rate
        self.hop_seconds = hop_seconds
        self.n_frames_for = n_frames_for
        self.scene_labels = list(scene_labels if scene_labels is not None else clips.scene_labels)
        self.event_labels = list(event_labels if event_labels is not None else clips.event_labels)
        self._scene_index = {label: i for i, label in enumerate(self.scene_labels)}
        self.cache = cache
        self._waveforms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.clips)

    def waveform(self, index: int) -> np.ndarray:
        if index in self._waveforms:
            return self._waveforms[index]
        clip = self.clips[index]
        audio = np.asarray(self.source.audio(clip, self.sample_rate), dtype=np.float32)
        expected = round(clip.duration * self.sample_rate)
        if audio.ndim != 1 or len(audio) != expected:
            raise DataError(
                f"clip '{clip.clip_id}' ({clip.path}): audio() returned shape {audio.shape}, expected ({expected},) "
                f"= duration {clip.duration} s at {self.sample_rate} Hz"
            )
        if self.cache:
            self._waveforms[index] = audio
        return audio

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[index]
        audio = self.waveform(index)
        n_frames = int(self.n_frames_for(len(audio)))
        item: dict[str, Any] = {"index": index, "clip_id": clip.clip_id, "waveform": torch.from_numpy(audio)}
        if clip.scene is not None:
            if clip.scene not in self._scene_index:
                raise DataError(f"clip '{clip.clip_id}': scene '{clip.scene}' is not in {self.scene_labels}")
            item["scene"] = self._scene_index[clip.scene]
        if clip.events is not None:
            item["event"] = torch.from_numpy(event_roll(clip, self.event_labels, n_frames, self.hop_seconds))
        item["n_frames"] = n_frames
        return item


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into a batch: ``waveform [B, S]``, ``targets`` and ``masks`` per task (only tasks some clip has).

    Waveforms of unequal length are zero-padded at the end (and their event rolls with inactive frames).
    """
    n_samples = max(len(item["waveform"]) for item in items)
    n_frames = max(item["n_frames"] for item in items)
    waveform = torch.zeros(len(items), n_samples)
    for row, item in enumerate(items):
        waveform[row, : len(item["waveform"])] = item["waveform"]
    batch: dict[str, Any] = {
        "waveform": waveform,
        "index": torch.tensor([item["index"] for item in items]),
        "clip_ids": [item["clip_id"] for item in items],
        "targets": {},
        "masks": {},
    }
    scene_mask = torch.tensor(["scene" in item for item in items])
    if scene_mask.any():
        batch["targets"]["scene"] = torch.tensor([item.get("scene", -1) for item in items], dtype=torch.long)
        batch["masks"]["scene"] = scene_mask
    event_mask = torch.tensor(["event" in item for item in items])
    if event_mask.any():
        n_classes = next(item["event"].shape[1] for item in items if "event" in item)
        rolls = torch.zeros(len(items), n_frames, n_classes)
        for row, item in enumerate(items):
            if "event" in item:
                rolls[row, : item["event"].shape[0]] = item["event"]
        batch["targets"]["event"] = rolls
        batch["masks"]["event"] = event_mask
    return batch


def labelled_subset(
    outputs: dict[str, Tensor], batch: dict[str, Any], tasks: Sequence[str]
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Outputs and targets of ``tasks`` restricted to the clips labelled for each task.

    Event outputs and targets are cut to the shorter of the two frame counts: a head that pools time may return a
    frame or two fewer than the features have (``time_stride`` not dividing the frame count).
    """
    outs: dict[str, Tensor] = {}
    targets: dict[str, Tensor] = {}
    for task in tasks:
        if task not in outputs or task not in batch["targets"]:
            continue
        mask = batch["masks"][task].to(outputs[task].device)
        if not bool(mask.any()):
            continue
        output, target = outputs[task][mask], batch["targets"][task].to(outputs[task].device)[mask]
        if task == "event":
            frames = min(output.shape[1], target.shape[1])
            output, target = output[:, :frames], target[:, :frames]
        outs[task], targets[task] = output, target
    return outs, targets


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with its tensors on ``device`` (non-blocking when pinned)."""
    moved = dict(batch)
    moved["waveform"] = batch["waveform"].to(device, non_blocking=True)
    moved["targets"] = {task: t.to(device, non_blocking=True) for task, t in batch["targets"].items()}
    moved["masks"] = {task: m.to(device, non_blocking=True) for task, m in batch["masks"].items()}
    return moved
