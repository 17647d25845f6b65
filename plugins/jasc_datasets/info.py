"""``jasc data info``: what a dataset holds and every problem in it, read through the real loaders."""

from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jasc_core import ClipList, DataError, Dataset
from jasc_datasets.audio import probe
from jasc_datasets.clip_source import ClipSource
from jasc_datasets.dcase_formats import Desed, Disjoint, Tau
from jasc_datasets.joint import Joint, has_downloaded_layout
from jasc_datasets.stand_in import MissingDownloadError
from jasc_datasets.synthesis.writer import read_manifest
from jasc_datasets.synthetic import reader_for

#: Notes that are worth a line but do not stop training.
WARNING_NOTES = ("merged_overlaps", "dropped_zero_length", "events_after_audio_end", "events_cut_at_audio_end",
                 "files_longer_than_clip")
#: A recording shorter than this fraction of the clip it is zero-padded into is reported: the clip is then mostly
#: silence (a 0.1-s file in a 10-s clip is 99 % padding), which usually means a wrong ``clip_seconds`` or a broken
#: file. The last window of a long recording is not counted: it is padded by design of the windowing.
SHORT_RECORDING_FRACTION = 0.5
#: Recordings named in a short-recording warning (the JSON report counts them all).
SHORT_RECORDING_EXAMPLES = 3


@dataclass
class SplitSummary:
    name: str
    clips: int = 0
    minutes: float = 0.0
    recordings: int = 0
    scene_clips: int = 0
    event_clips: int = 0
    weak_clips: int = 0
    scenes: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    event_seconds: Counter = field(default_factory=Counter)
    weak: Counter = field(default_factory=Counter)
    notes: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    """A dataset's content per split, its scene/event co-occurrence and its problems."""

    source: str
    kind: str
    splits: list[SplitSummary] = field(default_factory=list)
    scene_labels: list[str] = field(default_factory=list)
    event_labels: list[str] = field(default_factory=list)
    #: scene -> event label -> clips of that scene with that event (all splits).
    cooccurrence: dict[str, Counter] = field(default_factory=dict)
    fatal: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "scene_labels": self.scene_labels,
            "event_labels": self.event_labels,
            "splits": {s.name: {"clips": s.clips, "minutes": round(s.minutes, 3), "recordings": s.recordings,
                                "scene_clips": s.scene_clips, "event_clips": s.event_clips,
                                "weak_clips": s.weak_clips, "scenes": dict(s.scenes), "events": dict(s.events),
                                "event_seconds": {k: round(v, 3) for k, v in s.event_seconds.items()},
                                "weak": dict(s.weak), "notes": s.notes} for s in self.splits},
            "cooccurrence": {scene: dict(c) for scene, c in self.cooccurrence.items()},
            "fatal": self.fatal,
            "warnings": self.warnings,
        }


def dataset_for_folder(folder: str) -> Dataset:
    """A loader for a dataset folder, by what it contains (skip_bad_files on, so every bad file is found)."""
    manifest = read_manifest(folder)
    if manifest is not None:
        return reader_for(manifest["key"]["preset"], folder, skip_bad_files=True)
    leftovers = list(Path(folder).parent.glob(f".{Path(folder).name}.tmp-*"))
    if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, "manifest.json")):
        if leftovers or os.path.isdir(folder):
            raise DataError(f"{folder}: an incomplete synthetic dataset (interrupted?); generate it again"
                            + (f" and remove {', '.join(map(str, leftovers))}" if leftovers else ""))
        raise DataError(f"{folder}: neither a dataset folder nor a recipe file")
    if glob.glob(os.path.join(folder, "meta", "*.tsv")) or has_downloaded_layout(folder):
        return Joint({"root": folder, "skip_bad_files": True})
    if os.path.isdir(os.path.join(folder, "tau")) and os.path.isdir(os.path.join(folder, "desed")):
        return Disjoint({"tau": {"root": os.path.join(folder, "tau"), "skip_bad_files": True},
                         "desed": {"root": os.path.join(folder, "desed"), "skip_bad_files": True}})
    if os.path.isfile(os.path.join(folder, "meta.csv")):
        return Tau({"root": folder, "skip_bad_files": True})
    if os.path.isdir(os.path.join(folder, "metadata")):
        return Desed({"root": folder, "skip_bad_files": True})
    raise DataError(
        f"{folder}: no known layout (joint: meta/<split>.tsv, or meta/meta_development.txt + meta/meta_evaluation.txt "
        "as `jasc data download tut-joint` writes them; TAU: meta.csv; DESED: metadata/; disjoint: tau/ + desed/)"
    )


def _annotated_parts(dataset: Dataset) -> list[ClipSource]:
    """The file-based readers behind ``dataset``: itself, a synthetic set's reader, or both parts of a disjoint one."""
    parts = [dataset.tau, dataset.desed] if isinstance(dataset, Disjoint) else [getattr(dataset, "reader", dataset)]
    return [part for part in parts if isinstance(part, ClipSource)]


def _annotation_problems(dataset: Dataset) -> list[str]:
    return [problem for part in _annotated_parts(dataset) for problem in part.read_annotations()[1]]


def _audio_problems(dataset: Dataset) -> list[str]:
    """Unreadable audio among the recordings whose annotation rows parsed. Loading stops at annotation problems,
    so without this a user would fix those first and only then learn about the audio."""
    problems: list[str] = []
    for part in _annotated_parts(dataset):
        recordings = {r.path: r for split in part.read_annotations()[0].values() for r in split}
        for recording in recordings.values():
            try:
                probe(recording.path)
            except DataError as exc:
                problems.append(f"unreadable audio: {exc} (named at {recording.source})")
    return problems


def inspect(dataset: Dataset, source: str, skipping_is_fatal: bool = True) -> Report:
    """Load every split of ``dataset`` (built with ``skip_bad_files`` on) and summarise it."""
    report = Report(source=source, kind=dataset.name)
    try:
        dataset.prepare()
    except MissingDownloadError as exc:  # nothing to read yet: the download command is the one thing to say
        report.fatal.append(str(exc))
        return report
    except DataError as exc:
        problems = _safe(_annotation_problems, dataset)
        found = (problems + _safe(_audio_problems, dataset)) if problems else [str(exc)]
        # A folder that cannot be read at all fails every pass with the same message: report it once.
        report.fatal += list(dict.fromkeys(found))
        return report
    if getattr(dataset, "stand_in", None):
        report.warnings.append(f"this is the {dataset.stand_in}, not the real data")
    splits = dataset.splits()
    if "train" not in splits:
        report.fatal.append(f"no 'train' split (splits: {', '.join(splits) or 'none'}); training needs one")
    for name in splits:
        try:
            clips = dataset.load(name)
        except DataError as exc:
            report.fatal.append(f"split {name}: {exc}")
            continue
        report.splits.append(summarise(name, clips, report))
        report.scene_labels, report.event_labels = clips.scene_labels, clips.event_labels
        if not len(clips):
            report.fatal.append(f"split {name} has no clips")
    skipped = list(getattr(dataset, "skipped", []))
    (report.fatal if skipping_is_fatal else report.warnings).extend(f"unreadable audio: {m}" for m in skipped)
    return report


def _safe(function, *args) -> list[str]:
    try:
        return function(*args)
    except DataError as exc:
        return [str(exc)]


def summarise(name: str, clips: ClipList, report: Report) -> SplitSummary:
    summary = SplitSummary(name=name, clips=len(clips), notes=dict(clips.notes))
    summary.minutes = sum(c.duration for c in clips) / 60.0
    summary.recordings = len({c.path for c in clips})
    for clip in clips:
        if clip.scene is not None:
            summary.scene_clips += 1
            summary.scenes[clip.scene] += 1
        if clip.events is not None:
            summary.event_clips += 1
            for event in clip.events:
                summary.events[event.label] += 1
                summary.event_seconds[event.label] += event.offset - event.onset
            if clip.scene is not None:
                row = report.cooccurrence.setdefault(clip.scene, Counter())
                for label in {e.label for e in clip.events}:
                    row[label] += 1
        if clip.weak is not None:
            summary.weak_clips += 1
            summary.weak.update(clip.weak)
    for key in WARNING_NOTES:
        if clips.notes.get(key):
            report.warnings.append(f"split {name}: {key.replace('_', ' ')}: {clips.notes[key]}")
    short = short_recordings(clips)
    if short:
        summary.notes["recordings_shorter_than_half_clip"] = len(short)
        examples = ", ".join(f"{os.path.basename(path)} ({seconds:.2f} s in a {clip:g}-s clip)"
                             for path, seconds, clip in short[:SHORT_RECORDING_EXAMPLES])
        more = f" and {len(short) - SHORT_RECORDING_EXAMPLES} more" if len(short) > SHORT_RECORDING_EXAMPLES else ""
        report.warnings.append(
            f"split {name}: {len(short)} recording(s) shorter than {SHORT_RECORDING_FRACTION:.0%} of their clip, "
            f"which is then mostly zero padding: {examples}{more}")
    return summary


def short_recordings(clips: ClipList) -> list[tuple[str, float, float]]:
    """``(path, recording seconds, clip seconds)`` of each recording that fills less than
    ``SHORT_RECORDING_FRACTION`` of the one clip it makes (see ``SHORT_RECORDING_FRACTION`` for why)."""
    by_path: dict[str, list] = {}
    for clip in clips:
        by_path.setdefault(clip.path, []).append(clip)
    short = []
    for path, windows in by_path.items():
        if len(windows) != 1 or windows[0].start != 0:
            continue  # cut into several clips: only the last window is padded
        try:
            seconds = probe(path).duration
        except DataError:
            continue  # unreadable audio is reported as a problem of its own
        if seconds < SHORT_RECORDING_FRACTION * windows[0].duration:
            short.append((path, seconds, windows[0].duration))
    return short
