"""Task descriptions: everything the core knows about a task, so that the loop and evaluation never branch on its name.

A task has one description: which labels of a clip it reads (and at what granularity), how those become targets and
collate into a batch, its default loss, how logits become probabilities, and what is measured on it. The loop,
batching and evaluation iterate over ``TASK_DESCRIPTIONS``; adding a task means adding a description here.

Outputs and targets travel in dicts keyed by **output name**. A task's main output carries the task's name
(``"scene"``: logits ``[B, N]``; ``"event"``: frame logits ``[B, T, M]``). A frame-level task also has a clip-level
output ``"<task>/clip"`` (``[B, M]``): the head's own (DESED's CRNN: attention pooling) or, for a head without one,
the maximum of the frame logits over time. Event labels come at three granularities:

- strong (frames): ``targets["event"]`` ``[B, T, M]``, trains the frame output;
- weak (clip level): ``targets["event/clip"]`` ``[B, M]``, trains the clip output (as DESED's baseline does, only on
  weakly labelled clips: a strongly labelled clip trains the frame output, through which the clip output learns too);
- none (unlabelled): no target; such clips only feed schedules' extra losses (a mean teacher's consistency).

Every target has a mask ``[B]`` (True where the clip has that label); a target no clip of a batch has is absent.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from jasc_core.contract.batch import Batch
from jasc_core.contract.class_masks import LabelledTargets, class_masks_of, masked_bce_with_logits
from jasc_core.contract.data import Clip, ClipList
from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.metrics import event_frame_metrics, scene_metrics
from jasc_core.contract.task_outputs import TaskOutputs
from jasc_core.errors import DataError


class TaskDescription(ABC):
    """One task as the core sees it; subclasses describe scene classification and event detection."""

    #: The task's name: the key of its head in recipes and of its main output.
    name: ClassVar[str]
    #: True when the main output is frame-wise ``[B, T, classes]`` (event detection): frame targets, DCASE event
    #: metrics, thresholds and event rolls apply. False for one label per clip (scene classification).
    frame_level: ClassVar[bool]
    #: Metrics the validation pass reports for this task (``val/<task>/<metric>``); the first one enters ``val/score``.
    validation_metrics: ClassVar[tuple[str, ...]]

    @abstractmethod
    def label_kind(self, clip: Clip) -> str | None:
        """The kind of label ``clip`` carries for this task (a data-stream name part), or None."""

    @abstractmethod
    def vocabulary(self, clips: ClipList) -> list[str]:
        """The class labels of this task, as the dataset declares them for the split."""

    @abstractmethod
    def item_targets(self, clip: Clip, labels: Sequence[str], n_frames: int, hop_seconds: float) -> dict[str, Tensor]:
        """Targets of one clip, keyed by output name (empty when the clip has no label for this task)."""

    @abstractmethod
    def loss(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor | None:
        """The default unweighted loss from outputs and targets already cut to their labelled clips (None: no target)."""

    @abstractmethod
    def probabilities(self, logits: Tensor) -> Tensor:
        """Logits of the main output -> probabilities."""

    @abstractmethod
    def metrics(self, probs: np.ndarray, targets: np.ndarray, labels: Sequence[str], threshold: float | np.ndarray) -> JSONObject:
        """Frame- or clip-level metrics of labelled clips (``probs`` and ``targets`` as ``SplitScores`` holds them)."""

    # -- what predicting and exporting ask (jasc_core.inference; plain data in jasc_core.contract.task_outputs) ----
    #: ``"class"``, ``"multilabel"`` or ``"frames"`` (``task_outputs``); None: ``"frames"`` when ``frame_level``,
    #: else ``"class"``.
    output_kind: ClassVar[str | None] = None
    #: Key of the task in a file's prediction (None: the task's name) and file name of its TSV (None: ``<name>.tsv``).
    result_key: ClassVar[str | None] = None
    table: ClassVar[str | None] = None

    @property
    def selection_metric(self) -> str:
        """The metric that ranks models of this task: the first validation metric."""
        return self.validation_metrics[0]

    def outputs(self) -> TaskOutputs:
        """This task as inference sees it (torch-free, stored in ONNX export folders)."""
        kind = self.output_kind or ("frames" if self.frame_level else "class")
        if (kind == "frames") != self.frame_level:
            raise TypeError(f"task '{self.name}': output_kind {kind!r} disagrees with frame_level={self.frame_level}")
        return TaskOutputs(task=self.name, kind=kind, result_key=self.result_key or self.name,
                           table=self.table or f"{self.name}.tsv", selection_metric=self.selection_metric)

    def output_probabilities(self, output_name: str, logits: Tensor) -> Tensor:
        """Logits of one of this task's outputs -> probabilities: the main output through ``probabilities``; a
        frame-level task's clip output is logits of independent classes, like its frames (sigmoid)."""
        return self.probabilities(logits) if output_name == self.name else torch.sigmoid(logits.float())

    def output_names(self) -> tuple[str, ...]:
        """Every output name this task may produce or be trained on."""
        return (self.name, f"{self.name}/clip") if self.frame_level else (self.name,)

    def align(self, output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Output and target of one output name made the same length (frame outputs may be a frame short)."""
        if output.dim() == 3 and target.dim() == 3:
            frames = min(output.shape[1], target.shape[1])
            return output[:, :frames], target[:, :frames]
        return output, target

    def item_class_masks(self, clip: Clip, labels: Sequence[str]) -> dict[str, Tensor]:
        """The classes of each output the clip's dataset annotates, ``[classes]`` bool keyed by output name; empty
        when it annotates every class (the default: only a multi-label task can leave classes out)."""
        return {}

    def collate(self, items: Sequence[Mapping[str, object]], n_frames: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Stack the items' targets of this task: ``(targets, masks)`` keyed by output name, absent when no item has it.

        Frame targets of shorter clips are padded with inactive frames; a clip without the target gets zeros and a
        False mask entry.
        """
        targets: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        for key in self.output_names():
            rows = [item["targets"].get(key) for item in items]
            present = [row for row in rows if row is not None]
            if not present:
                continue
            like = present[0]
            shape = (len(items), n_frames, *like.shape[1:]) if like.dim() == 2 else (len(items), *like.shape)
            stacked = torch.zeros(shape, dtype=like.dtype)
            for i, row in enumerate(rows):
                if row is not None and row.dim() == 2:
                    stacked[i, : row.shape[0]] = row
                elif row is not None:
                    stacked[i] = row
            targets[key] = stacked
            masks[key] = torch.tensor([row is not None for row in rows])
        return targets, masks

    def collate_class_masks(self, items: Sequence[Mapping[str, object]], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``[B, classes]`` class masks of the collated ``targets`` where some item annotates only some classes (an
        item without a mask of its own annotates all)."""
        masks: dict[str, Tensor] = {}
        for key, target in targets.items():
            rows = [item.get("class_masks", {}).get(key) for item in items]
            if all(row is None for row in rows):
                continue
            every = torch.ones(target.shape[-1], dtype=torch.bool)
            masks[key] = torch.stack([row if row is not None else every for row in rows])
        return masks


class SceneTask(TaskDescription):
    """Acoustic scene classification: one class per clip, cross-entropy, softmax, accuracy and macro-F."""

    name = "scene"
    frame_level = False
    validation_metrics = ("accuracy", "macro_f1")
    output_kind = "class"
    table = "scenes.tsv"

    def label_kind(self, clip: Clip) -> str | None:
        return "scene" if clip.scene is not None else None

    def vocabulary(self, clips: ClipList) -> list[str]:
        return list(clips.scene_labels)

    def item_targets(self, clip: Clip, labels: Sequence[str], n_frames: int, hop_seconds: float) -> dict[str, Tensor]:
        if clip.scene is None:
            return {}
        try:
            index = list(labels).index(clip.scene)
        except ValueError:
            raise DataError(f"clip '{clip.clip_id}': scene '{clip.scene}' is not in {list(labels)}") from None
        return {self.name: torch.tensor(index, dtype=torch.long)}

    def loss(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor | None:
        if self.name not in targets or self.name not in outputs:
            return None
        target = targets[self.name]
        # Class indices [B], or class probabilities [B, N] after a mixing augmentation.
        target = target.float() if target.dim() == 2 else target.long()
        return nn.functional.cross_entropy(outputs[self.name].float(), target)

    def probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def metrics(self, probs: np.ndarray, targets: np.ndarray, labels: Sequence[str], threshold: float | np.ndarray) -> JSONObject:
        return scene_metrics(targets, probs.argmax(axis=-1), list(labels))


class EventTask(TaskDescription):
    """Sound event detection: multi-label frames (strong) and clips (weak), binary cross-entropy, sigmoid."""

    name = "event"
    frame_level = True
    validation_metrics = ("frame_micro_f1", "frame_macro_f1")
    output_kind = "frames"
    result_key = "events"
    table = "events.tsv"

    def label_kind(self, clip: Clip) -> str | None:
        if clip.events is not None:
            return "strong"
        if clip.weak is not None:
            return "weak"
        return None

    def vocabulary(self, clips: ClipList) -> list[str]:
        return list(clips.event_labels)

    def item_class_masks(self, clip: Clip, labels: Sequence[str]) -> dict[str, Tensor]:
        if clip.event_classes is None:
            return {}
        annotated = set(clip.event_classes)
        unknown = annotated - set(labels)
        if unknown:
            raise DataError(f"clip '{clip.clip_id}': event_classes {sorted(unknown)} are not in {list(labels)}")
        mask = torch.tensor([label in annotated for label in labels])
        return {key: mask for key in self.output_names()}

    def item_targets(self, clip: Clip, labels: Sequence[str], n_frames: int, hop_seconds: float) -> dict[str, Tensor]:
        if clip.events is not None:
            return {self.name: torch.from_numpy(event_roll(clip, labels, n_frames, hop_seconds))}
        if clip.weak is not None:
            index = {label: i for i, label in enumerate(labels)}
            weak = torch.zeros(len(labels))
            for label in clip.weak:
                if label not in index:
                    raise DataError(f"clip '{clip.clip_id}': weak label '{label}' is not in {list(labels)}")
                weak[index[label]] = 1.0
            return {f"{self.name}/clip": weak}
        return {}

    def loss(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor | None:
        # Classes outside a clip's dataset's annotation (``targets.class_masks``) are neither positives nor negatives:
        # the mean runs over annotated entries only (DESED_task 2024's masked BCE).
        class_masks = class_masks_of(targets)
        terms = [
            masked_bce_with_logits(outputs[key].float(), targets[key].float(), class_masks.get(key))
            for key in self.output_names() if key in targets and key in outputs
        ]
        return sum(terms[1:], terms[0]) if terms else None

    def probabilities(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits.float())

    def metrics(self, probs: np.ndarray, targets: np.ndarray, labels: Sequence[str], threshold: float | np.ndarray) -> JSONObject:
        return event_frame_metrics(probs, targets, list(labels), threshold)


def event_roll(clip: Clip, labels: Sequence[str], n_frames: int, hop_seconds: float) -> np.ndarray:
    """Frame targets ``[n_frames, len(labels)]`` of a clip's events: 1 where a hard-labelled event is active, an
    event's ``strength`` for a soft label (the highest where events of one class overlap).

    With hop ``h`` seconds, frame ``t`` covers ``[t*h, (t+1)*h)``; a frame is active for a class when an event of that
    class overlaps it (``onset < (t+1)*h`` and ``offset > t*h``), so an event marks frames ``floor(onset/h)`` to
    ``ceil(offset/h) - 1``. The evaluation turns reference events into frame targets by the same rule.
    """
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
            roll[first:last, column] = np.maximum(roll[first:last, column], event.strength)
    return roll


#: The tasks the toolkit knows, in the order listings and recipes show them: the built-ins, then those plugins
#: registered (``register(MyTask)`` in ``jasc_register_components``; the process-wide registry installs them).
BUILTIN_TASKS: tuple[TaskDescription, ...] = (SceneTask(), EventTask())
TASK_DESCRIPTIONS: dict[str, TaskDescription] = {task.name: task for task in BUILTIN_TASKS}


class _TaskNames(Sequence[str]):
    """The names of ``TASK_DESCRIPTIONS`` now (a live view: a task a plugin registers appears in it)."""

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:  # type: ignore[override]
        return tuple(TASK_DESCRIPTIONS)[index]

    def __len__(self) -> int:
        return len(TASK_DESCRIPTIONS)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, _TaskNames)) else other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


TASKS: Sequence[str] = _TaskNames()


def install_tasks(registered: Sequence[TaskDescription]) -> None:
    """Make ``TASK_DESCRIPTIONS`` the built-ins plus ``registered`` (the process-wide registry's plugin tasks)."""
    TASK_DESCRIPTIONS.clear()
    TASK_DESCRIPTIONS.update({task.name: task for task in (*BUILTIN_TASKS, *registered)})


def frame_level_task(tasks: Iterable[str]) -> str | None:
    """The first frame-level task among ``tasks``, if any: the one thresholds, event lists and DCASE metrics are for."""
    return next((task for task in tasks if TASK_DESCRIPTIONS[task].frame_level), None)


def labelled_tasks(clips: Iterable[Clip]) -> set[str]:
    """The tasks labelled (at any granularity) in at least one of ``clips``."""
    clips = list(clips)
    return {task for task, d in TASK_DESCRIPTIONS.items() if any(d.label_kind(clip) is not None for clip in clips)}


def task_of(output_name: str) -> str:
    """The task an output name belongs to (``"event/clip"`` -> ``"event"``)."""
    return output_name.split("/", 1)[0]


def clips_in_loss(task: str, targets: Mapping[str, Tensor]) -> int:
    """The clips a task's loss is a mean over: the most of any of its outputs' labelled clips (``labelled_subset``'s
    targets). Clip-weighted means of several batches' or processes' losses weight by it."""
    return max(len(target) for key, target in targets.items() if task_of(key) == task)


def task_class_masks(batch: Batch) -> dict[str, Tensor]:
    """``[B, M]`` class masks per task, for heads that pool over classes (DESED 2024's attention pooling): the mask
    of the task's first output name the batch has one for."""
    masks: dict[str, Tensor] = {}
    for task, description in TASK_DESCRIPTIONS.items():
        for key in description.output_names():
            if key in batch.class_masks:
                masks[task] = batch.class_masks[key]
                break
    return masks


def labelled_subset(
    outputs: Mapping[str, Tensor], batch: Batch, tasks: Sequence[str]
) -> tuple[dict[str, Tensor], LabelledTargets]:
    """Outputs and targets of ``tasks``, each output name cut to the clips labelled for it (absent when none is).

    The targets are a ``LabelledTargets`` dict: its ``class_masks`` are the batch's class masks cut to the same clips,
    which the event loss (and weightings with losses of their own) read to leave unannotated classes out.
    """
    targets, masks = batch.targets, batch.masks
    outs: dict[str, Tensor] = {}
    cut = LabelledTargets()
    for task in tasks:
        description = TASK_DESCRIPTIONS[task]
        for key in description.output_names():
            output = outputs.get(key)
            if output is None and key != task and task in outputs:
                # A head without its own clip output: the clip logit is the highest frame logit (max pooling).
                output = outputs[task].amax(dim=1)
            if output is None or key not in targets:
                continue
            mask = masks[key].to(output.device)
            if not bool(mask.any()):
                continue
            output, target = description.align(output[mask], targets[key].to(output.device)[mask])
            outs[key], cut[key] = output, target
            if key in batch.class_masks:
                cut.class_masks[key] = batch.class_masks[key].to(output.device)[mask]
    return outs, cut


def default_task_losses(outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each task's default loss (its description's) for the tasks with targets."""
    losses: dict[str, Tensor] = {}
    for task, description in TASK_DESCRIPTIONS.items():
        loss = description.loss(outputs, targets)
        if loss is not None:
            losses[task] = loss
    return losses
