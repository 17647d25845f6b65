"""The ``joint`` dataset: recordings with a scene label and strong event labels, in the joint annotation format."""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter

from pydantic import BaseModel, Field

from jasc_core import ClipList, DataError, Dataset
from jasc_datasets.clip_source import ClipSource, log_notes
from jasc_datasets.joint_format import read_joint
from jasc_datasets.packages import default_root
from jasc_datasets.recordings import Recording, merge_recording_events
from jasc_datasets.stand_in import StandInFallback
from jasc_datasets.tables import Problems

# What a user with no data folder yet needs to read: what goes in it and where each part comes from.
ROOT_MISSING = (
    "data.root '{root}' does not exist. The joint loader reads a folder holding annotation files (one per split, "
    "header path/scene_label/event_start_time/event_end_time/event_label; by default meta/<split>.tsv, or the files "
    "named in data.splits) and the audio files their paths point to, relative to the folder. For the papers' TUT "
    "data: the metadata files meta/meta_development.txt and meta/meta_evaluation.txt of the public repository "
    "KeisukeImoto/metadata_SEDandASC01, next to the unpacked TUT Acoustic Scenes 2016/2017 and TUT Sound Events "
    "2016/2017 development and evaluation packages (published on Zenodo by Tampere University): "
    "`jasc data download tut-joint` fetches and arranges them; leave data.root unset to read them from there."
)

#: The annotation files of the downloaded layout (``jasc data download tut-joint``), used when root is not given.
DOWNLOADED_SPLITS = {"train": "meta/meta_development.txt", "eval": "meta/meta_evaluation.txt"}


def has_downloaded_layout(folder: str) -> bool:
    """Whether ``folder`` holds the joint metadata as ``jasc data download tut-joint`` places it (read without
    ``splits``: development as train, evaluation as eval)."""
    return all(os.path.isfile(os.path.join(folder, f)) for f in DOWNLOADED_SPLITS.values())


class Joint(StandInFallback, ClipSource):
    """Scene + strong event labels in the joint TUT format (one annotation file per split), windowed into clips.

    Without ``root``: the folder ``jasc data download tut-joint`` fills, or, while that is not downloaded, the
    synthetic ``tut-joint`` stand-in (``stand_in`` says so; ``require_real`` makes it an error)."""

    name = "joint"
    DOWNLOAD_NAME = "tut-joint"
    STAND_IN_PRESET = "tut-joint"

    class Config(BaseModel):
        root: str | None = Field(
            None, description="dataset folder; annotation files and the audio paths in them are relative to it. "
            "Default: <data home>/tut-joint, filled by `jasc data download tut-joint` (data home: $JASC_DATA, else "
            "~/.local/share/jasc); while that is not downloaded, a synthetic stand-in (see require_real)",
        )
        require_real: bool = Field(
            False, description="with root not given and the data not downloaded: fail (naming the download "
            "command) instead of training on the synthetic stand-in",
        )
        splits: dict[str, str] = Field(
            default_factory=dict,
            description="split name -> annotation file (relative to root); empty: every meta/<split>.tsv (without "
            "root: the downloaded meta/meta_development.txt as train and meta/meta_evaluation.txt as eval)",
        )
        val_fraction: float = Field(
            0.0, ge=0.0, lt=1.0,
            description="when > 0 and there is no 'val' annotation file: move this fraction of the 'train' "
            "recordings of each scene into a 'val' split (deterministic, by a hash of the path)",
        )
        clip_seconds: float = Field(10.0, gt=0, description="clip length in seconds (recordings are windowed)")
        scene_labels: list[str] | None = Field(
            None, description="scene vocabulary; default: the sorted labels of all splits"
        )
        event_labels: list[str] | None = Field(
            None, description="event vocabulary; default: the sorted labels of all splits"
        )
        skip_bad_files: bool = Field(
            False, description="skip unreadable/missing audio with a counted warning instead of an error"
        )

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._vocab: tuple[list[str], list[str]] | None = None

    @property
    def root(self) -> str:
        """The dataset folder: ``root`` as given, else the downloaded one."""
        return self.config.root if self.config.root is not None else str(default_root(self.DOWNLOAD_NAME))

    def _stand_in_part(self, synthetic: Dataset) -> Dataset:
        return synthetic

    # -- annotations ---------------------------------------------------------------------------------------------

    def annotation_files(self) -> dict[str, str]:
        """Split name -> annotation file path."""
        root = self.root
        if not os.path.isdir(root):
            raise DataError(ROOT_MISSING.format(root=root))
        splits = self.config.splits or (DOWNLOADED_SPLITS if self.config.root is None else {})
        if splits:
            return {s: os.path.join(root, f) for s, f in splits.items()}
        files = sorted(glob.glob(os.path.join(root, "meta", "*.tsv")))
        if not files and has_downloaded_layout(root):
            return {s: os.path.join(root, f) for s, f in DOWNLOADED_SPLITS.items()}
        if not files:
            raise DataError(f"{root}: no annotation files: neither meta/<split>.tsv nor the downloaded layout "
                            f"({', '.join(DOWNLOADED_SPLITS.values())}); or give data.splits")
        found = {os.path.splitext(os.path.basename(f))[0]: f for f in files}
        order = {"train": 0, "val": 1, "eval": 2}  # the usual order first, any other split after, alphabetically
        return {s: found[s] for s in sorted(found, key=lambda s: (order.get(s, 3), s))}

    def _read_annotations(self) -> tuple[dict[str, list[Recording]], Problems]:
        problems = Problems()
        cfg = self.config
        recordings = {
            split: read_joint(path, self.root, problems, cfg.scene_labels, cfg.event_labels)
            for split, path in self.annotation_files().items()
        }
        if cfg.val_fraction > 0 and "train" in recordings and "val" not in recordings:
            recordings["train"], recordings["val"] = carve_validation(recordings["train"], cfg.val_fraction)
        return recordings, problems

    def vocabularies(self) -> tuple[list[str], list[str]]:
        """(scene labels, event labels): the configured ones, else the sorted labels found in all splits."""
        if self._vocab is None:
            recordings, _ = self.read_annotations()
            every = [r for split in recordings.values() for r in split]
            scenes = self.config.scene_labels
            if scenes is None:
                scenes = sorted({r.scene for r in every if r.scene is not None})
            events = self.config.event_labels
            if events is None:
                events = sorted({e.label for r in every for e in (r.events or [])})
            self._vocab = (list(scenes), list(events))
        return self._vocab

    # -- Dataset API ---------------------------------------------------------------------------------------------

    def read_split(self, split: str) -> ClipList:
        """The clips of ``split`` read from the files at root."""
        notes: Counter = Counter()
        recordings = merge_recording_events(self.split_recordings(split), notes)
        clips = self._clips(recordings, notes, self.config.clip_seconds, split)
        scenes, events = self.vocabularies()
        log_notes(self.name, split, notes)
        return ClipList(clips=clips, scene_labels=scenes, event_labels=events, notes=dict(notes))


def carve_validation(recordings: list[Recording], fraction: float) -> tuple[list[Recording], list[Recording]]:
    """Split recordings into (train, val): per scene, the ``round(fraction * n)`` recordings with the smallest hash
    of their path go to val. Whole recordings move, so no clip of a val recording is in train."""
    by_scene: dict[str | None, list[Recording]] = {}
    for recording in recordings:
        by_scene.setdefault(recording.scene, []).append(recording)
    chosen: set[str] = set()
    for group in by_scene.values():
        ranked = sorted(group, key=lambda r: hashlib.sha1(r.relpath.encode()).hexdigest())
        chosen.update(r.relpath for r in ranked[: int(round(fraction * len(group)))])
    return [r for r in recordings if r.relpath not in chosen], [r for r in recordings if r.relpath in chosen]
