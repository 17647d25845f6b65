"""The ``multi`` dataset: several datasets in one recipe, each with its class mapping onto the recipe's event list.

    data:
      name: multi
      event_labels: [Alarm_bell_ringing, Blender, ..., Speech, footsteps, car, ...]
      datasets:
        - {name: desed}                      # its labels are already the recipe's
        - name: maestro                      # the part's own config next to name, as in a data block of its own
          classes: {"people talking": Speech, "cutlery and dishes": Dishes, footsteps: footsteps, car: car}

A part is any registered dataset, built from its block: ``name``, that dataset's own config fields, and three keys
read by ``multi``: ``classes``, ``label`` and ``tasks`` (the tasks whose labels the part contributes, default both: a
part with ``tasks: [event]`` loses its scene labels, and its clips that carried only a scene label are left out).
``classes`` maps the part's event labels onto
``event_labels``; a class it leaves out (or maps to null) is dropped, events and weak labels alike. Without
``classes`` every label of the part must be one of ``event_labels`` and maps to itself. Each clip gets ``dataset``
(the part's ``label``, default its ``name``) and ``event_classes``: the recipe classes its part annotates (None when
that is every class), so the event loss and pooling leave the other classes out (DESED_task 2024's class mask).
Scene labels join in the order the parts give them (or ``scene_labels``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field, model_validator

from jasc_core import Clip, ClipList, ConfigError, DataError, Dataset, Event, component
from jasc_datasets.synthetic import Synthetic

#: Keys of a part's block that belong to ``multi``, not to the part's own config.
PART_KEYS = ("name", "classes", "label", "tasks")


class Multi(Dataset):
    """Several datasets joined, each clip knowing its dataset and the recipe classes that dataset annotates."""

    name = "multi"

    class Config(BaseModel):
        datasets: list[dict[str, Any]] = Field(
            ..., min_length=1,
            description="the parts: each {name: <dataset>, classes: {its label: recipe label}, label: <dataset name "
                        "on clips, default the name>, ...that dataset's own config}",
        )
        event_labels: list[str] = Field(..., description="the recipe's event classes, in output order")
        scene_labels: list[str] | None = Field(None, description="scene vocabulary; default: the parts' in order")
        id_prefix: bool = Field(
            False, description="prefix every clip id with '<label>-' (parts whose clip ids would clash; the ids are "
                               "the filenames of the DCASE TSV output)",
        )

        @model_validator(mode="after")
        def _check(self) -> Multi.Config:
            seen: set[str] = set()
            for i, block in enumerate(self.datasets):
                if not isinstance(block.get("name"), str):
                    raise ValueError(f"datasets[{i}].name: missing; each part names a registered dataset")
                label = block.get("label") or block["name"]
                if label in seen:
                    raise ValueError(f"datasets[{i}]: a second part labelled '{label}' (give each a distinct label)")
                seen.add(label)
                unknown = {v for v in (block.get("classes") or {}).values() if v is not None} - set(self.event_labels)
                if unknown:
                    raise ValueError(f"datasets[{i}].classes maps onto {sorted(unknown)}, not in event_labels")
            return self

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.parts: dict[str, Dataset] = {}
        self.mappings: dict[str, dict[str, str] | None] = {}
        self.tasks: dict[str, set[str]] = {}
        for i, block in enumerate(self.config.datasets):
            label = block.get("label") or block["name"]
            own = {k: v for k, v in block.items() if k not in PART_KEYS}
            try:
                self.parts[label] = component("dataset", block["name"])(own)
            except ConfigError as error:
                raise ConfigError(f"data.datasets[{i}] ({block['name']}): {error}") from None
            self.tasks[label] = set(block.get("tasks") or ("scene", "event"))
            classes = block.get("classes")
            self.mappings[label] = None if classes is None else {k: v for k, v in classes.items() if v is not None}
        self.stand_in: str | None = None
        self._originals: dict[tuple[str, str], Clip] = {}

    def prepare(self) -> None:
        for part in self.parts.values():
            part.prepare()
        phrases = [f"{label}: {part.stand_in}" for label, part in self.parts.items() if part.stand_in]
        if phrases:
            # The note names every generated part: a part that is the plain synthetic dataset (DESED's usual
            # stand-in in these recipes) serves generated audio as much as a real dataset's stand-in does.
            phrases = [f"{label}: {part.stand_in}" if part.stand_in else f"{label}: {_generated(part)}"
                       for label, part in self.parts.items() if part.stand_in or _generated(part)]
        self.stand_in = "; ".join(phrases) or None

    def splits(self) -> list[str]:
        return list(dict.fromkeys(s for part in self.parts.values() for s in part.splits()))

    def annotated(self, label: str, part_labels: list[str]) -> tuple[str, ...] | None:
        """The recipe classes part ``label`` annotates (None: all of them)."""
        mapping = self.mappings[label]
        if mapping is None:
            unknown = sorted(set(part_labels) - set(self.config.event_labels))
            if unknown:
                raise DataError(f"data.datasets '{label}': event labels {unknown} are not in event_labels; map them "
                                "with classes")
            classes = set(part_labels)
        else:
            classes = {mapping[c] for c in part_labels if c in mapping}
        ordered = tuple(c for c in self.config.event_labels if c in classes)
        return None if len(ordered) == len(self.config.event_labels) else ordered

    def load(self, split: str) -> ClipList:
        clips: list[Clip] = []
        scenes: list[str] = list(self.config.scene_labels or [])
        notes: Counter = Counter()
        for label, part in self.parts.items():
            if split not in part.splits():
                continue
            loaded = part.load(split)
            annotated = self.annotated(label, list(loaded.event_labels))
            clips += [self._mapped(clip, label, annotated) for clip in loaded if _keeps(clip, self.tasks[label])]
            if self.config.scene_labels is None:
                scenes += [s for s in loaded.scene_labels if s not in scenes]
            notes.update(loaded.notes)
        if not clips and split not in self.splits():
            raise DataError(f"no split '{split}' in any part; splits: {', '.join(self.splits())}")
        clash = [i for i, n in Counter(c.clip_id for c in clips).items() if n > 1]
        if clash:
            raise DataError(f"split {split}: clip ids in more than one part: {', '.join(clash[:5])}")
        return ClipList(clips=clips, scene_labels=scenes, event_labels=list(self.config.event_labels),
                        notes=dict(notes))

    def _mapped(self, clip: Clip, label: str, annotated: tuple[str, ...] | None) -> Clip:
        mapping = self.mappings[label]

        def target(name: str) -> str | None:
            return name if mapping is None else mapping.get(name)

        events = None if clip.events is None else tuple(
            Event(e.onset, e.offset, target(e.label), e.strength) for e in clip.events if target(e.label))
        weak = None if clip.weak is None else tuple(dict.fromkeys(target(w) for w in clip.weak if target(w)))
        scene = clip.scene if "scene" in self.tasks[label] else None
        if "event" not in self.tasks[label]:
            events, weak, annotated = None, None, None
        clip_id = f"{label}-{clip.clip_id}" if self.config.id_prefix else clip.clip_id
        self._originals[(label, clip_id)] = clip
        return dataclasses.replace(clip, clip_id=clip_id, scene=scene, events=events, weak=weak, dataset=label,
                                   event_classes=annotated)

    def audio(self, clip: Clip, sample_rate: int):
        part = self.parts.get(clip.dataset or "")
        if part is None:
            raise DataError(f"clip '{clip.clip_id}': dataset '{clip.dataset}' is none of {list(self.parts)}")
        # The part reads the clip as it gave it (its own id and labels: a synthetic source draws audio from them).
        return part.audio(self._originals.get((clip.dataset, clip.clip_id), clip), sample_rate)


def _keeps(clip: Clip, tasks: set[str]) -> bool:
    """False for a clip whose only labels are of tasks the part does not contribute."""
    labelled = {"scene": clip.scene is not None, "event": clip.events is not None or clip.weak is not None}
    return not any(labelled.values()) or any(labelled[t] for t in tasks if t in labelled)


def _generated(part: Dataset) -> str | None:
    """What a part made of generated audio serves (the ``synthetic`` dataset's preset and size), else None."""
    if not isinstance(part, Synthetic):
        return None
    return f"synthetic {part.config.preset} soundscapes ({part.config.minutes:g} min)"
