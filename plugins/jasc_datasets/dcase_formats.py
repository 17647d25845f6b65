"""The DCASE formats of disjoint data (003): TAU scene clips, DESED event clips, and both together.

- ``tau``: ``meta.csv`` (tab-separated ``filename scene_label identifier source_label``) and split lists in the
  TAU ``evaluation_setup`` format (``filename [scene_label]``). Clips have a scene and no event labels.
- ``desed``: per split, parts of kind ``strong`` (tsv ``filename onset offset event_label``; a row with empty event
  fields marks a file without events), ``weak`` (tsv ``filename event_labels``, comma-separated) or ``unlabeled``
  (every audio file of a folder). Clips have no scene; strong clips have events, weak clips only ``weak``.
- ``disjoint``: a TAU root and a DESED root; each split holds the clips of both, so a batch may carry either task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter
from typing import Literal

from pydantic import BaseModel, Field

from jasc_core import ClipList, DataError, Dataset, Event
from jasc_datasets.clip_source import ClipSource, log_notes
from jasc_datasets.recordings import Recording, merge_recording_events
from jasc_datasets.tables import Problems, check_label, parse_time, read_table

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def _whole_file_clips(source: ClipSource, recordings, notes, clip_seconds, split):
    """One clip per file; its id is the file's unique stem (the DCASE ``filename`` without window suffix)."""
    clips = source._clips(recordings, notes, clip_seconds, split, single=True)
    return [dataclasses.replace(c, clip_id=c.clip_id.rsplit("__", 1)[0]) for c in clips]


class Tau(ClipSource):
    """Scene-only clips in the TAU Urban Acoustic Scenes format (meta.csv + evaluation_setup split lists)."""

    name = "tau"
    DEFAULT_SPLITS = {"train": "evaluation_setup/fold1_train.csv", "val": "evaluation_setup/fold1_val.csv",
                      "eval": "evaluation_setup/fold1_evaluate.csv"}

    class Config(BaseModel):
        root: str = Field(description="TAU dataset folder (holds meta.csv)")
        meta: str = Field("meta.csv", description="metadata file, relative to root")
        splits: dict[str, str] | None = Field(
            None, description="split name -> split list relative to root; default: those of evaluation_setup/"
            "fold1_{train,val,evaluate}.csv that exist (evaluate is split 'eval')",
        )
        val_fraction: float = Field(
            0.0, ge=0.0, lt=1.0,
            description="when > 0 and there is no 'val' list: move this fraction of the 'train' recording "
            "identifiers into 'val' (whole identifiers, deterministic)",
        )
        clip_seconds: float = Field(1.0, gt=0, description="clip length in seconds (TAU 2022: 1 s)")
        scene_labels: list[str] | None = Field(None, description="scene vocabulary; default: sorted labels of meta.csv")
        skip_bad_files: bool = Field(False, description="skip unreadable/missing audio with a counted warning")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._vocabulary: list[str] = []

    def vocabulary(self) -> list[str]:
        """The scene labels: the configured ones, else the sorted labels of meta.csv."""
        self.read_annotations()
        return list(self._vocabulary)

    def _read_annotations(self) -> tuple[dict[str, list[Recording]], Problems]:
        cfg = self.config
        problems = Problems()
        meta_path = os.path.join(cfg.root, cfg.meta)
        meta: dict[str, tuple[str, str]] = {}
        for line, row in read_table(meta_path, ("filename", "scene_label"), problems):
            where = f"{meta_path}:{line}"
            if check_label(row["scene_label"], cfg.scene_labels, "scene", where, problems):
                meta[row["filename"]] = (row["scene_label"], row.get("identifier", "") or row["filename"])
        self._vocabulary = cfg.scene_labels or sorted({scene for scene, _ in meta.values()})
        files = cfg.splits
        if files is None:
            files = {s: f for s, f in self.DEFAULT_SPLITS.items() if os.path.isfile(os.path.join(cfg.root, f))}
            if not files and meta:
                problems.add(cfg.root, "no split lists evaluation_setup/fold1_{train,val,evaluate}.csv (give 'splits')")
        recordings: dict[str, list[Recording]] = {}
        identifiers: dict[str, str] = {}
        for split, rel in files.items():
            path = os.path.join(cfg.root, rel)
            recordings[split] = []
            for line, row in read_table(path, ("filename",), problems):
                where = f"{path}:{line}"
                filename = row["filename"]
                if filename not in meta:
                    problems.add(where, f"{filename} is not in {meta_path}")
                    continue
                scene, identifiers[filename] = meta[filename]
                recordings[split].append(
                    Recording(os.path.normpath(os.path.join(cfg.root, filename)), filename, scene, None, None, where)
                )
        if cfg.val_fraction > 0 and "train" in recordings and "val" not in recordings:
            # Whole identifiers (recording locations) move, so no location is in both train and val.
            ids = sorted({identifiers[r.relpath] for r in recordings["train"]},
                         key=lambda i: hashlib.sha1(i.encode()).hexdigest())
            chosen = set(ids[: int(round(cfg.val_fraction * len(ids)))])
            recordings["val"] = [r for r in recordings["train"] if identifiers[r.relpath] in chosen]
            recordings["train"] = [r for r in recordings["train"] if identifiers[r.relpath] not in chosen]
        return recordings, problems

    def load(self, split: str) -> ClipList:
        notes: Counter = Counter()
        clips = _whole_file_clips(self, self.split_recordings(split), notes, self.config.clip_seconds, split)
        log_notes(self.name, split, notes)
        return ClipList(clips=clips, scene_labels=self.vocabulary(), event_labels=[], notes=dict(notes))


class DesedPart(BaseModel):
    """One part of a DESED split: its kind, its audio folder and (strong, weak) its annotation file."""

    kind: Literal["strong", "weak", "unlabeled"] = Field(description="strong, weak or unlabeled")
    audio: str = Field(description="audio folder relative to root; annotation filenames are relative to it")
    tsv: str | None = Field(None, description="annotation file relative to root (strong and weak parts)")


DESED_DEFAULT_SPLITS = {
    "train": [
        DesedPart(kind="strong", audio="audio/train/strong", tsv="metadata/train/strong.tsv"),
        DesedPart(kind="weak", audio="audio/train/weak", tsv="metadata/train/weak.tsv"),
        DesedPart(kind="unlabeled", audio="audio/train/unlabeled"),
    ],
    "val": [DesedPart(kind="strong", audio="audio/validation", tsv="metadata/validation/validation.tsv")],
    "eval": [DesedPart(kind="strong", audio="audio/eval", tsv="metadata/eval/eval.tsv")],
}


class Desed(ClipSource):
    """Event-only clips in the DESED formats: strong, weak and unlabeled parts per split."""

    name = "desed"

    class Config(BaseModel):
        root: str = Field(description="DESED dataset folder")
        splits: dict[str, list[DesedPart]] = Field(
            default_factory=lambda: {k: list(v) for k, v in DESED_DEFAULT_SPLITS.items()},
            description="split name -> parts ({kind, audio, tsv}); default: the layout `jasc data synth "
            "--preset dcase-disjoint` writes (docs/data.md)",
        )
        clip_seconds: float = Field(10.0, gt=0, description="clip length in seconds (DESED: 10 s)")
        event_labels: list[str] | None = Field(None, description="event vocabulary; default: sorted labels found")
        skip_bad_files: bool = Field(False, description="skip unreadable/missing audio with a counted warning")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._vocabulary: list[str] = []

    def vocabulary(self) -> list[str]:
        """The event labels: the configured ones, else the sorted labels of every strong and weak part."""
        self.read_annotations()
        return list(self._vocabulary)

    def _part(self, part: DesedPart, problems: Problems) -> list[Recording]:
        root, vocabulary = self.config.root, self.config.event_labels
        folder = os.path.join(root, part.audio)
        if part.kind == "unlabeled":
            if not os.path.isdir(folder):
                problems.add(folder, "audio folder not found")
                return []
            names = sorted(n for n in os.listdir(folder) if n.lower().endswith(AUDIO_EXTENSIONS))
            return [Recording(os.path.join(folder, n), os.path.join(part.audio, n), None, None, None, folder)
                    for n in names]
        if part.tsv is None:
            problems.add(root, f"a {part.kind} part needs 'tsv'")
            return []
        path = os.path.join(root, part.tsv)
        recordings: dict[str, Recording] = {}
        if part.kind == "weak":
            for line, row in read_table(path, ("filename", "event_labels"), problems):
                where = f"{path}:{line}"
                labels = tuple(sorted({x.strip() for x in row["event_labels"].split(",") if x.strip()}))
                if all(check_label(x, vocabulary, "event", where, problems) for x in labels):
                    recordings[row["filename"]] = Recording(
                        os.path.join(folder, row["filename"]), os.path.join(part.audio, row["filename"]), None, None,
                        labels, where)
            return list(recordings.values())
        for line, row in read_table(path, ("filename", "onset", "offset", "event_label"), problems):
            where = f"{path}:{line}"
            name = row["filename"]
            recording = recordings.setdefault(name, Recording(
                os.path.join(folder, name), os.path.join(part.audio, name), None, [], None, where))
            fields = (row["onset"], row["offset"], row["event_label"])
            if not any(fields) or all(f.lower() in ("", "nan") for f in fields):
                continue
            onset = parse_time(fields[0], where, "onset", problems)
            offset = parse_time(fields[1], where, "offset", problems)
            if onset is None or offset is None or not fields[2]:
                if fields[2] == "":
                    problems.add(where, "event_label is empty")
                continue
            if onset > offset:
                problems.add(where, f"onset {fields[0]} is after offset {fields[1]}")
                continue
            if check_label(fields[2], vocabulary, "event", where, problems):
                recording.events.append(Event(onset, offset, fields[2]))
        return list(recordings.values())

    def _read_annotations(self) -> tuple[dict[str, list[Recording]], Problems]:
        problems = Problems()
        recordings = {split: [r for part in parts for r in self._part(part, problems)]
                      for split, parts in self.config.splits.items()}
        self._vocabulary = self.config.event_labels or sorted(
            {e.label for rs in recordings.values() for r in rs for e in (r.events or [])}
            | {w for rs in recordings.values() for r in rs for w in (r.weak or ())})
        return recordings, problems

    def load(self, split: str) -> ClipList:
        notes: Counter = Counter()
        recordings = merge_recording_events(self.split_recordings(split), notes)
        clips = _whole_file_clips(self, recordings, notes, self.config.clip_seconds, split)
        log_notes(self.name, split, notes)
        return ClipList(clips=clips, scene_labels=[], event_labels=self.vocabulary(), notes=dict(notes))


class Disjoint(Dataset):
    """Scene-only TAU clips and event-only DESED clips in the same splits (disjoint multitask data, 003)."""

    name = "disjoint"

    class Config(BaseModel):
        tau: Tau.Config = Field(description="the scene part: a `tau` block (root, splits, ...)")
        desed: Desed.Config = Field(description="the event part: a `desed` block (root, splits, ...)")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.tau = Tau(self.config.tau)
        self.desed = Desed(self.config.desed)

    @property
    def skipped(self) -> list[str]:
        return self.tau.skipped + self.desed.skipped

    def prepare(self) -> None:
        self.tau.prepare()
        self.desed.prepare()

    def splits(self) -> list[str]:
        return list(dict.fromkeys(self.tau.splits() + self.desed.splits()))

    def load(self, split: str) -> ClipList:
        parts = [d.load(split) for d in (self.tau, self.desed) if split in d.splits()]
        if not parts:
            raise DataError(f"no split '{split}' in the TAU or DESED part; splits: {', '.join(self.splits())}")
        clips = [c for p in parts for c in p.clips]
        ids = Counter(c.clip_id for c in clips)
        clash = [i for i, n in ids.items() if n > 1]
        if clash:
            raise DataError(f"split {split}: clip ids in both the TAU and the DESED part: {', '.join(clash[:5])}")
        notes: Counter = Counter()
        for p in parts:
            notes.update(p.notes)
        return ClipList(clips=clips, scene_labels=self.tau.vocabulary(), event_labels=self.desed.vocabulary(),
                        notes=dict(notes))

    def audio(self, clip, sample_rate: int):
        return self.tau.audio(clip, sample_rate)
