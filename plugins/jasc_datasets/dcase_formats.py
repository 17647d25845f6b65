"""The DCASE formats of disjoint data (003): TAU scene clips, DESED event clips, and both together.

- ``tau``: ``meta.csv`` (tab-separated ``filename scene_label identifier source_label``) and split lists in the
  TAU ``evaluation_setup`` format (``filename [scene_label]``). Clips have a scene and no event labels, and the
  recording device of ``source_label`` (``Clip.device``); ``subset`` trains on a DCASE 2024 Task 1 training subset
  (``tau_subsets.py``).
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
from jasc_datasets.packages import default_root
from jasc_datasets.recordings import Recording, merge_recording_events
from jasc_datasets.stand_in import StandInFallback, missing_download, refuse_or_log, synthetic_stand_in
from jasc_datasets.tables import Problems, check_label, parse_time, read_table
from jasc_datasets.tau_subsets import SPLIT_FILE, device_of, draw_subset, read_subset_file

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
#: Where ``jasc data download tau-2022-mobile`` unpacks the development set (inside <data home>/tau-2022-mobile).
TAU_DOWNLOADED_FOLDER = "TAU-urban-acoustic-scenes-2022-mobile-development"
REQUIRE_REAL_HELP = ("with root not given and the data not downloaded: fail (naming the download command) instead "
                     "of training on the synthetic stand-in")


def _whole_file_clips(source: ClipSource, recordings, notes, clip_seconds, split):
    """One clip per file; its id is the file's unique stem (the DCASE ``filename`` without window suffix)."""
    clips = source._clips(recordings, notes, clip_seconds, split, single=True)
    return [dataclasses.replace(c, clip_id=c.clip_id.rsplit("__", 1)[0]) for c in clips]


class Tau(StandInFallback, ClipSource):
    """Scene-only clips in the TAU Urban Acoustic Scenes format (meta.csv + evaluation_setup split lists).

    Without ``root``: the development set ``jasc data download tau-2022-mobile`` unpacks, or, while that is not
    downloaded, the TAU part of the synthetic ``dcase-disjoint`` stand-in."""

    name = "tau"
    DOWNLOAD_NAME = "tau-2022-mobile"
    STAND_IN_PRESET = "dcase-disjoint"
    DEFAULT_SPLITS = {"train": "evaluation_setup/fold1_train.csv", "val": "evaluation_setup/fold1_val.csv",
                      "eval": "evaluation_setup/fold1_evaluate.csv"}

    class Config(BaseModel):
        root: str | None = Field(
            None, description="TAU dataset folder (holds meta.csv); default: <data home>/tau-2022-mobile/"
            f"{TAU_DOWNLOADED_FOLDER} (`jasc data download tau-2022-mobile`), else a synthetic stand-in",
        )
        require_real: bool = Field(False, description=REQUIRE_REAL_HELP)
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
        subset: Literal[5, 10, 25, 50, 100] | None = Field(
            None, description="train on this DCASE 2024 Task 1 training subset (% of the 'train' split): real data "
            "reads subset_file; the synthetic stand-in draws it (nested, device- and scene-balanced; docs/"
            "distillation.md)")
        subset_file: str = Field(SPLIT_FILE, description="the subset's split file relative to root ({percent} is "
                                 "replaced; tab-separated filename, scene_label)")
        subset_seed: int = Field(0, ge=0, description="seed of drawn subsets")
        subset_rule: Literal["file", "drawn"] = Field(
            "file", description="file: read subset_file (the challenge's split); drawn: draw the subset by the "
            "nested, balanced rule (generated data; the synthetic stand-in always draws)")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._vocabulary: list[str] = []
        self._devices: dict[str, str] = {}

    @property
    def root(self) -> str:
        """The dataset folder: ``root`` as given, else the downloaded development set."""
        if self.config.root is not None:
            return self.config.root
        return str(default_root(self.DOWNLOAD_NAME) / TAU_DOWNLOADED_FOLDER)

    def _stand_in_part(self, synthetic: Dataset) -> Dataset:
        return synthetic.reader.tau

    def vocabulary(self) -> list[str]:
        """The scene labels: the configured ones, else the sorted labels of meta.csv."""
        if self._stand_in_reader is not None:
            return self._stand_in_reader.vocabulary()
        self.read_annotations()
        return list(self._vocabulary)

    def _read_annotations(self) -> tuple[dict[str, list[Recording]], Problems]:
        cfg = self.config
        root = self.root
        problems = Problems()
        meta_path = os.path.join(root, cfg.meta)
        meta: dict[str, tuple[str, str]] = {}
        for line, row in read_table(meta_path, ("filename", "scene_label"), problems):
            where = f"{meta_path}:{line}"
            if check_label(row["scene_label"], cfg.scene_labels, "scene", where, problems):
                meta[row["filename"]] = (row["scene_label"], row.get("identifier", "") or row["filename"])
                device = device_of(row, row["filename"])
                if device:
                    self._devices[os.path.normpath(os.path.join(root, row["filename"]))] = device
        self._vocabulary = cfg.scene_labels or sorted({scene for scene, _ in meta.values()})
        files = cfg.splits
        if files is None:
            files = {s: f for s, f in self.DEFAULT_SPLITS.items() if os.path.isfile(os.path.join(root, f))}
            if not files and meta:
                problems.add(root, "no split lists evaluation_setup/fold1_{train,val,evaluate}.csv (give 'splits')")
        recordings: dict[str, list[Recording]] = {}
        identifiers: dict[str, str] = {}
        for split, rel in files.items():
            path = os.path.join(root, rel)
            recordings[split] = []
            for line, row in read_table(path, ("filename",), problems):
                where = f"{path}:{line}"
                filename = row["filename"]
                if filename not in meta:
                    problems.add(where, f"{filename} is not in {meta_path}")
                    continue
                scene, identifiers[filename] = meta[filename]
                recordings[split].append(
                    Recording(os.path.normpath(os.path.join(root, filename)), filename, scene, None, None, where)
                )
        if cfg.val_fraction > 0 and "train" in recordings and "val" not in recordings:
            # Whole identifiers (recording locations) move, so no location is in both train and val.
            ids = sorted({identifiers[r.relpath] for r in recordings["train"]},
                         key=lambda i: hashlib.sha1(i.encode()).hexdigest())
            chosen = set(ids[: int(round(cfg.val_fraction * len(ids)))])
            recordings["val"] = [r for r in recordings["train"] if identifiers[r.relpath] in chosen]
            recordings["train"] = [r for r in recordings["train"] if identifiers[r.relpath] not in chosen]
        return recordings, problems

    def read_split(self, split: str) -> ClipList:
        """The clips of ``split`` read from the files at root."""
        notes: Counter = Counter()
        clips = _whole_file_clips(self, self.split_recordings(split), notes, self.config.clip_seconds, split)
        clips = [dataclasses.replace(c, device=self._devices.get(c.path)) for c in clips]
        log_notes(self.name, split, notes)
        return ClipList(clips=clips, scene_labels=self.vocabulary(), event_labels=[], notes=dict(notes))

    def load(self, split: str) -> ClipList:
        """The clips of ``split``; for 'train' with ``subset``, the DCASE 2024 Task 1 subset of them."""
        clips = super().load(split)
        percent = self.config.subset
        if split != "train" or percent is None:
            return clips
        if self._stand_in_reader is not None or self.config.subset_rule == "drawn":
            kept = draw_subset(clips.clips, percent, self.config.subset_seed)
        else:
            path = os.path.join(self.root, self.config.subset_file.format(percent=percent))
            names = {os.path.normpath(os.path.join(self.root, f)) for f in read_subset_file(path)}
            kept = [c for c in clips.clips if c.path in names]
        return dataclasses.replace(clips, clips=kept, notes={**clips.notes, f"subset_{percent}_of": len(clips)})


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


def downloaded_desed_splits(root: str) -> dict[str, list[DesedPart]]:
    """The splits of the layout ``jasc data download desed`` writes: synthetic soundscapes (strong) for train and
    val, the public evaluation set for eval; the YouTube parts (weak, unlabelled, real validation) join when
    ``desed.download_audioset_data`` has put them there."""
    synth = "dcase_synth/{kind}/{split}/synthetic21_{split}/soundscapes"
    splits = {
        "train": [DesedPart(kind="strong", audio=synth.format(kind="audio", split="train"),
                            tsv=synth.format(kind="metadata", split="train") + ".tsv")],
        "val": [DesedPart(kind="strong", audio=synth.format(kind="audio", split="validation"),
                          tsv=synth.format(kind="metadata", split="validation") + ".tsv")],
        "eval": [DesedPart(kind="strong", audio="dataset/audio/eval/public", tsv="dataset/metadata/eval/public.tsv")],
    }
    optional = [("train", DesedPart(kind="weak", audio="audio/train/weak_16k", tsv="metadata/train/weak.tsv")),
                ("train", DesedPart(kind="unlabeled", audio="audio/train/unlabel_in_domain_16k")),
                ("val", DesedPart(kind="strong", audio="audio/validation/validation_16k",
                                  tsv="metadata/validation/validation.tsv"))]
    for split, part in optional:
        if os.path.isdir(os.path.join(root, part.audio)):
            splits[split].append(part)
    return splits


class Desed(StandInFallback, ClipSource):
    """Event-only clips in the DESED formats: strong, weak and unlabeled parts per split.

    Without ``root``: the parts ``jasc data download desed`` fetches, or, while those are not downloaded, the DESED
    part of the synthetic ``dcase-disjoint`` stand-in."""

    name = "desed"
    DOWNLOAD_NAME = "desed"
    STAND_IN_PRESET = "dcase-disjoint"

    class Config(BaseModel):
        root: str | None = Field(
            None, description="DESED dataset folder; default: <data home>/desed (`jasc data download desed`), "
            "else a synthetic stand-in",
        )
        require_real: bool = Field(False, description=REQUIRE_REAL_HELP)
        splits: dict[str, list[DesedPart]] | None = Field(
            None, description="split name -> parts ({kind, audio, tsv}); default: the layout `jasc data synth "
            "--preset dcase-disjoint` writes (docs/data.md), or without root the one `jasc data download desed` writes",
        )
        clip_seconds: float = Field(10.0, gt=0, description="clip length in seconds (DESED: 10 s)")
        event_labels: list[str] | None = Field(None, description="event vocabulary; default: sorted labels found")
        skip_bad_files: bool = Field(False, description="skip unreadable/missing audio with a counted warning")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._vocabulary: list[str] = []

    @property
    def root(self) -> str:
        return self.config.root if self.config.root is not None else str(default_root(self.DOWNLOAD_NAME))

    def split_parts(self) -> dict[str, list[DesedPart]]:
        """The configured splits; without root and without configured splits, those of the downloaded layout."""
        if self.config.splits is not None:
            return self.config.splits
        if self.config.root is None:
            return downloaded_desed_splits(self.root)
        return {split: list(parts) for split, parts in DESED_DEFAULT_SPLITS.items()}

    def _stand_in_part(self, synthetic: Dataset) -> Dataset:
        return synthetic.reader.desed

    def vocabulary(self) -> list[str]:
        """The event labels: the configured ones, else the sorted labels of every strong and weak part."""
        if self._stand_in_reader is not None:
            return self._stand_in_reader.vocabulary()
        self.read_annotations()
        return list(self._vocabulary)

    def _part(self, part: DesedPart, problems: Problems) -> list[Recording]:
        root, vocabulary = self.root, self.config.event_labels
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
                      for split, parts in self.split_parts().items()}
        self._vocabulary = self.config.event_labels or sorted(
            {e.label for rs in recordings.values() for r in rs for e in (r.events or [])}
            | {w for rs in recordings.values() for r in rs for w in (r.weak or ())})
        return recordings, problems

    def read_split(self, split: str) -> ClipList:
        """The clips of ``split`` read from the files at root."""
        notes: Counter = Counter()
        recordings = merge_recording_events(self.split_recordings(split), notes)
        clips = _whole_file_clips(self, recordings, notes, self.config.clip_seconds, split)
        log_notes(self.name, split, notes)
        return ClipList(clips=clips, scene_labels=[], event_labels=self.vocabulary(), notes=dict(notes))


class Disjoint(Dataset):
    """Scene-only TAU clips and event-only DESED clips in the same splits (disjoint multitask data, 003).

    When either part has no root and is not downloaded, both parts come from the synthetic ``dcase-disjoint``
    stand-in (never real scenes with synthetic events): ``stand_in`` says so, ``require_real`` makes it an error."""

    name = "disjoint"

    class Config(BaseModel):
        tau: Tau.Config = Field(default_factory=Tau.Config,
                                description="the scene part: a `tau` block (root, splits, ...); default: downloaded")
        desed: Desed.Config = Field(default_factory=Desed.Config,
                                    description="the event part: a `desed` block (root, splits, ...); default: "
                                    "downloaded")
        require_real: bool = Field(False, description=REQUIRE_REAL_HELP)

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.tau = Tau(self.config.tau)
        self.desed = Desed(self.config.desed)
        #: None for real data; after ``prepare``, a short phrase naming the stand-in when one is served.
        self.stand_in: str | None = None
        self._stand_in_reader: Dataset | None = None

    @property
    def skipped(self) -> list[str]:
        if self._stand_in_reader is not None:
            return list(self._stand_in_reader.skipped)
        return self.tau.skipped + self.desed.skipped

    def prepare(self) -> None:
        cfg = self.config
        reasons = [r for r in (missing_download(Tau.DOWNLOAD_NAME, cfg.tau.root),
                               missing_download(Desed.DOWNLOAD_NAME, cfg.desed.root)) if r]
        if reasons:
            require = cfg.require_real or cfg.tau.require_real or cfg.desed.require_real
            self.stand_in = refuse_or_log(reasons, "dcase-disjoint", require)
            skip = cfg.tau.skip_bad_files or cfg.desed.skip_bad_files
            self._stand_in_reader = synthetic_stand_in("dcase-disjoint", skip)
            return
        self.stand_in, self._stand_in_reader = None, None
        self.tau.prepare()
        self.desed.prepare()

    def splits(self) -> list[str]:
        if self._stand_in_reader is not None:
            return self._stand_in_reader.splits()
        return list(dict.fromkeys(self.tau.splits() + self.desed.splits()))

    def load(self, split: str) -> ClipList:
        if self._stand_in_reader is not None:
            return self._stand_in_subset(self._stand_in_reader.load(split), split)
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
        if self._stand_in_reader is not None:
            return self._stand_in_reader.audio(clip, sample_rate)
        return self.tau.audio(clip, sample_rate)

    def _stand_in_subset(self, clips: ClipList, split: str) -> ClipList:
        """``tau.subset`` on the stand-in: the scene clips of 'train' cut to the drawn subset, as the ``tau`` dataset
        does with the stand-in it serves (no split file exists for generated data); the event clips all stay."""
        percent = self.config.tau.subset
        if split != "train" or percent is None:
            return clips
        scenes = [c for c in clips.clips if c.scene is not None]
        kept = {c.clip_id for c in draw_subset(scenes, percent, self.config.tau.subset_seed)}
        return dataclasses.replace(clips, clips=[c for c in clips.clips if c.scene is None or c.clip_id in kept],
                                   notes={**clips.notes, f"subset_{percent}_of": len(scenes)})
