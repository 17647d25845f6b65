"""Shared machinery of the file-based datasets: annotations read once, probing audio, skipping bad files,
windowing, reading clips."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

from jasc_core import Clip, DataError, Dataset
from jasc_datasets.audio import AudioInfo, probe, read_window
from jasc_datasets.recordings import Recording, unique_stems, window_recording
from jasc_datasets.tables import Problems, raise_problems

log = logging.getLogger("jasc_datasets")


class ClipSource(Dataset):
    """Shared machinery of the file-based datasets: annotations read once, probing audio, skipping bad files,
    windowing, reading clips.

    A subclass reads its annotation files in ``_read_annotations`` (recordings per split, every problem collected
    rather than raised) and builds its clip list in ``load`` from ``split_recordings(split)``.
    """

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._probed: dict[str, AudioInfo | DataError] = {}
        self._annotations: tuple[dict[str, list[Recording]], Problems] | None = None
        #: Messages of the non-fatal problems met so far (skipped files), for ``jasc data info``.
        self.skipped: list[str] = []

    def _read_annotations(self) -> tuple[dict[str, list[Recording]], Problems]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_annotations(self) -> tuple[dict[str, list[Recording]], Problems]:
        """Recordings per split and every annotation problem (not raised), read once."""
        if self._annotations is None:
            self._annotations = self._read_annotations()
        return self._annotations

    def prepare(self) -> None:
        raise_problems(self.read_annotations()[1])

    def splits(self) -> list[str]:
        return list(self.read_annotations()[0])

    def split_recordings(self, split: str) -> list[Recording]:
        """The recordings of ``split``; any annotation problem, or a split that does not exist, is an error."""
        recordings, problems = self.read_annotations()
        raise_problems(problems)
        if split not in recordings:
            raise DataError(f"{getattr(self, 'root', self.config.root)}: no split '{split}'; splits: {', '.join(recordings)}")
        return recordings[split]

    def _probe(self, path: str) -> AudioInfo:
        if path not in self._probed:
            try:
                self._probed[path] = probe(path)
            except DataError as exc:
                self._probed[path] = exc
        result = self._probed[path]
        if isinstance(result, DataError):
            raise result
        return result

    def _clips(
        self, recordings: list[Recording], notes: Counter, clip_seconds: float, split: str, single: bool = False
    ) -> list[Clip]:
        """Probe, window and collect the clips of ``recordings``; bad audio raises or (``skip_bad_files``) is
        counted in ``notes['skipped_bad_files']``."""
        stems = unique_stems([r.relpath for r in recordings])
        clips: list[Clip] = []
        for recording in recordings:
            try:
                info = self._probe(recording.path)
            except DataError as exc:
                message = f"{exc} (named at {recording.source})" if recording.source else str(exc)
                if not self.config.skip_bad_files:
                    raise DataError(message) from None
                notes["skipped_bad_files"] += 1
                if message not in self.skipped:  # a split loaded twice reports its files once
                    self.skipped.append(message)
                log.warning("split %s: skipping %s", split, message)
                continue
            clips.extend(
                window_recording(recording, info.duration, clip_seconds, stems[recording.relpath], notes, single)
            )
        return clips

    def audio(self, clip: Clip, sample_rate: int) -> np.ndarray:
        """The clip's mono float32 waveform at ``sample_rate``: ``round(duration * sample_rate)`` samples."""
        return read_window(clip.path, clip.start, clip.duration, sample_rate)


def log_notes(name: str, split: str, notes: Counter) -> None:
    for key, count in sorted(notes.items()):
        if count:
            log.info("%s split %s: %s = %d", name, split, key, count)
