"""The DCASE 2024 Task 1 training subsets (5, 10, 25, 50, 100 % of the TAU 2022 Mobile development training split)
and the recording device of a TAU file.

Real data: the challenge's public split files ``split_setup/split{5,10,25,50,100}.csv`` (tab-separated, a header,
columns ``filename`` and ``scene_label``; distributed with the DCASE 2024 Task 1 baseline, not by Zenodo and not
downloadable by jasc) are read from the dataset root; the subset is the training clips whose file they name. jasc
ships none of them: without the file a real-data run with ``subset`` stops, naming the file to put there.

Stand-in (no split file exists for generated data): the subset is drawn by :func:`draw_subset`, whose rule makes the
subsets nest (5 within 10 within 25 within 50 within 100) and keeps devices and scenes balanced:

1. the training clips are grouped into cells of one (device, scene);
2. within a cell, clips are ordered by ``sha1(f"{seed}:{clip_id}")`` (a fixed pseudo-random order for the seed);
3. each cell keeps its first ``max(1, round(percent / 100 * size))`` clips.

A larger percentage keeps a longer prefix of the same order, so every subset contains the smaller ones, and every
cell keeps its share.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from jasc_core import Clip, DataError

#: The percentages of the DCASE 2024 Task 1 training subsets.
SUBSET_PERCENTAGES = (5, 10, 25, 50, 100)
#: The split files of the DCASE 2024 Task 1 baseline, relative to the dataset root ({percent}: 5 ... 100).
SPLIT_FILE = "split_setup/split{percent}.csv"
#: TAU meta.csv columns that name the device (2020-2022 Mobile: ``source_label``).
DEVICE_COLUMNS = ("source_label", "device")


def device_of(row: dict[str, str], filename: str) -> str | None:
    """The recording device of a meta.csv row: its device column, else the file name's last ``-`` part
    (``airport-lisbon-1000-40000-a.wav`` -> ``a``), else None."""
    for column in DEVICE_COLUMNS:
        if row.get(column):
            return row[column]
    stem = os.path.splitext(os.path.basename(filename))[0]
    return stem.rsplit("-", 1)[1] if "-" in stem else None


def read_subset_file(path: str) -> set[str]:
    """The file names a split file lists (its ``filename`` column; tab-separated with a header)."""
    if not os.path.isfile(path):
        raise DataError(
            f"{path} not found: data.subset needs the DCASE 2024 Task 1 split file there (tab-separated, columns "
            "filename and scene_label; published with the DCASE 2024 Task 1 baseline, CPJKU/dcase2024_task1_baseline "
            "release files); jasc cannot download it")
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if "filename" not in header:
            raise DataError(f"{path}: the header has no 'filename' column (found: {', '.join(header)})")
        column = header.index("filename")
        return {line.rstrip("\n").split("\t")[column] for line in handle if line.strip()}


def draw_subset(clips: Sequence[Clip], percent: int, seed: int = 0) -> list[Clip]:
    """The ``percent`` % subset of ``clips`` by the nested, device- and scene-balanced rule of the module docstring
    (clips keep their order)."""
    if percent >= 100:
        return list(clips)
    cells: dict[tuple[str | None, str | None], list[Clip]] = {}
    for clip in clips:
        cells.setdefault((clip.device, clip.scene), []).append(clip)
    kept: set[str] = set()
    for members in cells.values():
        ordered = sorted(members, key=lambda c: hashlib.sha1(f"{seed}:{c.clip_id}".encode()).hexdigest())
        kept.update(c.clip_id for c in ordered[: max(1, round(percent / 100 * len(ordered)))])
    return [clip for clip in clips if clip.clip_id in kept]
