"""The synthetic stand-in of a real dataset: what a real-data recipe trains on when its data is not downloaded.

A real-data dataset (``joint``, ``tau``, ``desed``, ``disjoint``) whose ``root`` is not given reads the folder
``jasc data download`` fills (``<data home>/<name>``). When that download is incomplete it logs one line (what is
missing, the command that fetches it, its size) and serves the synthetic preset that mirrors it, so the papers' main
jobs run on a fresh machine; ``stand_in`` then names what is served, and ``require_real: true`` makes the same
situation a DataError. A ``root`` given explicitly is always read as it is (no fallback).
"""

from __future__ import annotations

import logging

from jasc_core import ClipList, DataError, Dataset, component
from jasc_datasets.download import missing_packages
from jasc_datasets.packages import default_root, packages_of, size_text

log = logging.getLogger("jasc_datasets")
_said: set[str] = set()

#: Minutes of the synthetic stand-ins. tut-joint: the papers' 266 min (001 Sec. IV-A: 192 min development, 74 min
#: evaluation; the preset keeps that proportion and holds 15 % of development out for validation). dcase-disjoint:
#: 60 min (1,800 TAU-like 1-s clips and 180 DESED-like 10-s clips); 003's real data (DCASE 2023 Task 1 and Task 4,
#: tens of hours) is far beyond what a CPU trains in reasonable time, so this size is chosen for practicality.
STAND_IN_MINUTES = {"tut-joint": 266.0, "dcase-disjoint": 60.0}


class MissingDownloadError(DataError):
    """``require_real`` is set and the real data is not downloaded: the message names the download command."""


def missing_download(name: str, root: str | None) -> str | None:
    """None when ``root`` was given or the download of ``name`` is complete; else what is missing, in words."""
    if root is not None:
        return None
    folder = default_root(name)
    missing = missing_packages(name, folder)
    if not missing:
        return None
    total = len(packages_of(name))
    return (f"{name} is not downloaded at {folder} ({len(missing)} of {total} files missing); "
            f"`jasc data download {name}` fetches it ({size_text(missing)})")


def refuse_or_log(reasons: list[str], preset: str, require_real: bool, minutes: float | None = None) -> str:
    """Raise the DataError of ``require_real``, else log the one line and return the ``stand_in`` phrase
    (``minutes``: the stand-in's size where it is not a preset of ``STAND_IN_MINUTES``)."""
    text = "; ".join(reasons)
    if require_real:
        raise MissingDownloadError(f"data.require_real is set and {text}; or give data.root")
    minutes = STAND_IN_MINUTES[preset] if minutes is None else minutes
    line = (f"{text}. Using the synthetic stand-in of {preset} instead ({minutes:g} min of "
            "generated audio); no result of this run is a reproduction.")
    if line not in _said:  # a run builds its dataset more than once (training, evaluation): say it once
        _said.add(line)
        log.warning(line)
    first = reasons[0].split(" (", 1)[0]
    return f"synthetic stand-in of {preset} ({first})"


def synthetic_stand_in(preset: str, skip_bad_files: bool = False) -> Dataset:
    """The registered ``synthetic`` dataset at the stand-in size of ``preset``, prepared (generated on first use
    into the synthetic cache, then reused)."""
    dataset = component("dataset", "synthetic")(
        {"preset": preset, "minutes": STAND_IN_MINUTES[preset], "skip_bad_files": skip_bad_files})
    dataset.prepare()
    return dataset


class StandInFallback:
    """Mixin for a ClipSource: serve a stand-in's splits, clips and audio when ``prepare`` chose one.

    A class using it defines ``DOWNLOAD_NAME`` (the ``jasc data download`` name), ``STAND_IN_PRESET``,
    ``_stand_in_part(synthetic)`` (the part of the prepared synthetic dataset it serves) and ``read_split(split)``
    (its own clip list, from the files at its root).
    """

    DOWNLOAD_NAME: str = ""
    STAND_IN_PRESET: str = ""
    #: None for real data; after ``prepare``, a short phrase naming the stand-in when one is served.
    stand_in: str | None = None
    _stand_in_reader: Dataset | None = None

    def _stand_in_part(self, synthetic: Dataset) -> Dataset:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_split(self, split: str) -> ClipList:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self) -> None:
        reason = missing_download(self.DOWNLOAD_NAME, self.config.root)
        if reason is None:
            self.stand_in, self._stand_in_reader = None, None
            super().prepare()
            return
        self.stand_in = refuse_or_log([reason], self.STAND_IN_PRESET, self.config.require_real)
        self._stand_in_reader = self._stand_in_part(
            synthetic_stand_in(self.STAND_IN_PRESET, self.config.skip_bad_files))

    def splits(self) -> list[str]:
        if self._stand_in_reader is not None:
            return self._stand_in_reader.splits()
        return super().splits()

    def load(self, split: str) -> ClipList:
        if self._stand_in_reader is not None:
            return self._stand_in_reader.load(split)
        return self.read_split(split)

    def audio(self, clip, sample_rate: int):
        if self._stand_in_reader is not None:
            return self._stand_in_reader.audio(clip, sample_rate)
        return super().audio(clip, sample_rate)
