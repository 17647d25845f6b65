"""The ``maestro`` dataset: MAESTRO Real (Martin-Morato & Mesaros; Zenodo record 7244360), soft strong labels from
five acoustic scenes, read as 10-s windows with overlap.

Layout (as the Zenodo archives unpack): ``development_audio/<scene>/<file>.wav`` and
``development_annotation/<any folder>/<file>.txt`` with tab-separated rows ``onset offset label confidence``: per
segment, the share of annotators who marked the class (a soft label in [0, 1]). The folder an audio file sits in is
its scene (cafe_restaurant, city_center, grocery_store, metro_station, residential_area): MAESTRO is the one public
set with scene labels and strong (soft) event labels on the same audio.

Clips: windows of ``window_seconds`` every ``hop_seconds`` (DESED_task 2024: 10 s every 1 s, as MAESTRO was
annotated), the last one ending at the file's end; ids ``<file>-<start*100>-<end*100>`` as DESED_task names them.
Each keeps its file's scene and the soft events cut to it (strength = confidence; rows of confidence 0 carry no
event). Evaluation overlap-adds the windows of each file into 1-s segment scores (``jasc_core.evaluation.per_dataset``).

Splits: ``evaluation_setup/<split>.txt`` (one file stem per line) where the folder has them, else per scene the last
``val_fraction`` of the files (sorted by name) are ``val`` and the rest ``train``.

Without ``root`` and without the download (``jasc data download maestro-real``), a synthetic stand-in in the same
layout is generated into the cache (``maestro_stand_in``) and served; ``stand_in`` says so.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from jasc_core import Clip, ClipList, DataError, Dataset, Event
from jasc_datasets.audio import probe, read_window
from jasc_datasets.packages import default_root
from jasc_datasets.stand_in import missing_download, refuse_or_log
from jasc_datasets.synthesis.maestro_like import SCENES, STAND_IN_PRESET, write_stand_in
from jasc_datasets.synthetic import default_cache_dir

DOWNLOAD_NAME = "maestro-real"


class Maestro(Dataset):
    """MAESTRO Real: soft strong event labels and scene labels on the same recordings, in overlapping windows."""

    name = "maestro"

    class Config(BaseModel):
        root: str | None = Field(
            None, description="folder with development_audio/ and development_annotation/; default: "
                              "<data home>/maestro-real (`jasc data download maestro-real`), else a synthetic stand-in")
        require_real: bool = Field(False, description="fail instead of serving the synthetic stand-in")
        window_seconds: float = Field(10.0, gt=0, description="clip (window) length (DESED_task 2024: 10 s)")
        hop_seconds: float = Field(1.0, gt=0, description="window hop (DESED_task 2024: 1 s); a whole number of "
                                                          "1-s segments, for overlap-add scoring")
        val_fraction: float = Field(0.2, ge=0, lt=1, description="without evaluation_setup/: the share of each "
                                                                 "scene's files (last by name) in 'val'")
        event_labels: list[str] | None = Field(None, description="event vocabulary; default: sorted labels found")
        stand_in_files_per_scene: int = Field(6, ge=3, description="stand-in: recordings per scene")
        stand_in_file_seconds: float = Field(60.0, ge=10, description="stand-in: length of each recording")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.stand_in: str | None = None
        self._root: Path | None = None
        self._files: dict[str, list[tuple[str, str, str]]] | None = None  # split -> (stem, audio, annotation)
        self._vocabulary: list[str] | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            raise DataError("maestro: prepare() was not called")
        return self._root

    def prepare(self) -> None:
        cfg = self.config
        reason = missing_download(DOWNLOAD_NAME, cfg.root)
        if reason is None:
            self._root = Path(cfg.root) if cfg.root is not None else default_root(DOWNLOAD_NAME)
            self.stand_in = None
        else:
            self.stand_in = refuse_or_log([reason], STAND_IN_PRESET, cfg.require_real, minutes=self._stand_in_minutes())
            self._root = write_stand_in(default_cache_dir() / "maestro_stand_in", cfg.stand_in_files_per_scene,
                                        cfg.stand_in_file_seconds)
        self._files = self._find_files()

    def _stand_in_minutes(self) -> float:
        return len(SCENES) * self.config.stand_in_files_per_scene * self.config.stand_in_file_seconds / 60

    def _find_files(self) -> dict[str, list[tuple[str, str, str]]]:
        audio = {p.stem: p for p in sorted((self.root / "development_audio").rglob("*.wav"))}
        notes = {p.stem: p for p in sorted((self.root / "development_annotation").rglob("*.txt"))}
        if not audio:
            raise DataError(f"{self.root}: no development_audio/<scene>/*.wav (is this MAESTRO Real?)")
        unpaired = sorted(set(audio) ^ set(notes))
        if unpaired:
            raise DataError(f"{self.root}: audio and annotation files do not pair up: {', '.join(unpaired[:5])}")
        setup = self.root / "evaluation_setup"
        if setup.is_dir():
            lists = {p.stem: [s.strip() for s in p.read_text().splitlines() if s.strip()]
                     for p in sorted(setup.glob("*.txt"))}
        else:
            lists = {"train": [], "val": []}
            for scene in sorted({p.parent.name for p in audio.values()}):
                stems = sorted(s for s, p in audio.items() if p.parent.name == scene)
                n_val = math.floor(len(stems) * self.config.val_fraction)
                lists["train"] += stems[: len(stems) - n_val]
                lists["val"] += stems[len(stems) - n_val:]
        out = {}
        for split, stems in lists.items():
            missing = [s for s in stems if s not in audio]
            if missing:
                raise DataError(f"{setup / (split + '.txt')}: no audio for {', '.join(missing[:5])}")
            out[split] = [(s, str(audio[s]), str(notes[s])) for s in stems]
        return out

    def splits(self) -> list[str]:
        return list(self._files or {})

    def load(self, split: str) -> ClipList:
        if self._files is None:
            self.prepare()
        assert self._files is not None
        if split not in self._files:
            raise DataError(f"maestro: no split '{split}'; splits: {', '.join(self._files)}")
        notes: Counter = Counter()
        recordings = [(stem, path, read_soft_annotation(annotation, notes)) for stem, path, annotation in
                      self._files[split]]
        labels = self.vocabulary()
        clips: list[Clip] = []
        for stem, path, events in recordings:
            unknown = {e.label for e in events} - set(labels)
            if unknown:
                raise DataError(f"{path}: event labels {sorted(unknown)} are not in data.event_labels")
            scene = Path(path).parent.name
            duration = probe(path).duration
            clips += windows(stem, path, scene, events, duration, self.config.window_seconds,
                             self.config.hop_seconds)
        scenes = sorted({Path(path).parent.name for files in self._files.values() for _, path, _ in files})
        return ClipList(clips=clips, scene_labels=scenes, event_labels=list(labels), notes=dict(notes))

    def vocabulary(self) -> list[str]:
        """The event labels: the configured ones, else every label of every split's annotation files (sorted), so
        that all splits share one vocabulary."""
        if self.config.event_labels:
            return list(self.config.event_labels)
        if self._vocabulary is None:
            assert self._files is not None
            found = {e.label for files in self._files.values() for _, _, annotation in files
                     for e in read_soft_annotation(annotation, Counter())}
            self._vocabulary = sorted(found)
        return self._vocabulary

    def audio(self, clip: Clip, sample_rate: int):
        return read_window(clip.path, clip.start, clip.duration, sample_rate)


def read_soft_annotation(path: str, notes: Counter) -> list[Event]:
    """Rows ``onset offset label confidence`` (tab-separated; a header row or a row without confidence is
    accepted, the latter as a hard label) -> soft events; confidence 0 rows carry no event."""
    events = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or row[0].strip().lower() == "onset":
                continue
            try:
                onset, offset = float(row[0]), float(row[1])
                label = row[2].strip()
                confidence = float(row[3]) if len(row) > 3 and row[3].strip() else 1.0
            except (ValueError, IndexError):
                raise DataError(f"{path}:{line}: expected 'onset offset label confidence', got {row}") from None
            if not 0.0 <= confidence <= 1.0 or offset < onset:
                raise DataError(f"{path}:{line}: confidence {confidence} outside [0, 1] or offset before onset")
            if confidence == 0.0 or offset == onset:
                notes["empty_soft_rows"] += 1
                continue
            events.append(Event(onset, offset, label, confidence))
    return events


def window_starts(duration: float, window: float, hop: float) -> list[tuple[float, float]]:
    """``(start, end)`` of each window: every ``hop`` while a whole window fits, then one ending at the file's end
    (DESED_task's chunking of MAESTRO)."""
    if duration <= window:
        return [(0.0, duration)]
    count = int((duration - window + hop) // hop + 1e-9)
    spans = [(i * hop, i * hop + window) for i in range(count)]
    if spans[-1][1] < duration - 1e-6:
        spans.append((count * hop, duration))
    return spans


def windows(stem: str, path: str, scene: str, events: list[Event], duration: float, window: float,
            hop: float) -> list[Clip]:
    """The clips of one recording: its windows with the soft events that overlap each, cut and made relative."""
    clips = []
    for start, end in window_starts(duration, window, hop):
        inside = tuple(Event(round(max(e.onset, start) - start, 6), round(min(e.offset, end) - start, 6), e.label,
                             e.strength) for e in events if e.onset < end and e.offset > start)
        clip_id = f"{stem}-{int(round(start * 100)):06d}-{int(round(end * 100)):06d}"
        clips.append(Clip(clip_id, path, start, round(end - start, 6), scene=scene, events=inside))
    return clips

