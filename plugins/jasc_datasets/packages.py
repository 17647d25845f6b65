"""What ``jasc data download`` knows: the public files of each real dataset, where they come from, their md5s.

The rows live in ``download_packages.tsv`` (shipped with the plugin): ``dataset part record filename bytes md5``.
``record`` is a Zenodo record id, or ``github:<owner>/<repo>@<commit>`` for a file of a repository at a pinned
commit. ``bytes``/``md5`` are ``NA`` where no published value exists (DESED's Zenodo parts): such an archive is
checked by reading it completely (zip CRCs, gzip CRC) and its md5 is recorded in the download marker.

Sizes and md5s of the Zenodo rows are those of ``shared/data/zenodo_packages.tsv`` (dcase_util 0.2.20, desed,
DESED_task); the two metadata files of 001 were hashed from the repository's blobs at the pinned commit. MAESTRO
Real's md5s are those of soundata's ``dcase23_task4b`` loader (its released version; an earlier draft of that loader
listed other values, and no byte sizes are published: they are NA).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jasc_core import DataError

PACKAGES_FILE = "download_packages.tsv"
DATA_ENV = "JASC_DATA"
MIRROR_ENV = "JASC_DOWNLOAD_MIRROR"
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class Package:
    """One public file of a dataset."""

    dataset: str
    part: str
    record: str
    filename: str
    size: int | None
    md5: str | None

    @property
    def is_archive(self) -> bool:
        return self.filename.endswith(ARCHIVE_SUFFIXES)

    @property
    def where(self) -> str:
        """How a message names the file: its record and name."""
        if self.record.startswith("github:"):
            return f"{self.record[len('github:'):]} {self.filename}"
        return f"Zenodo record {self.record} file {self.filename}"

    def url(self) -> str:
        """The download URL; ``$JASC_DOWNLOAD_MIRROR`` (a base URL) replaces the public hosts for every file,
        which is then fetched from ``<mirror>/<record>/<filename>`` (record: the Zenodo id, or owner/repo/commit)."""
        mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
        if self.record.startswith("github:"):
            repo, commit = self.record[len("github:"):].split("@")
            if mirror:
                return f"{mirror}/{repo}/{commit}/{self.filename}"
            return f"https://raw.githubusercontent.com/{repo}/{commit}/{self.filename}"
        if mirror:
            return f"{mirror}/{self.record}/{self.filename}"
        return f"https://zenodo.org/records/{self.record}/files/{self.filename}?download=1"


@dataclass(frozen=True)
class DatasetInfo:
    """A downloadable dataset: its parts (the default ones and those fetched on request) and what it needs besides."""

    name: str
    description: str
    default_parts: tuple[str, ...]
    optional_parts: tuple[str, ...] = ()
    manual_steps: str = ""


DATASETS: dict[str, DatasetInfo] = {
    "tut-joint": DatasetInfo(
        "tut-joint",
        "001's joint TUT data: TUT Acoustic Scenes 2016/2017 and TUT Sound Events 2016/2017 audio, with the joint "
        "metadata of KeisukeImoto/metadata_SEDandASC01 in meta/ (4 scenes, 25 events, 192 + 74 min)",
        ("dev", "eval"),
    ),
    "tau-2022-mobile": DatasetInfo(
        "tau-2022-mobile",
        "TAU Urban Acoustic Scenes 2022 Mobile (DCASE 2022-2024 Task 1; 10 scenes, 1-s clips)",
        ("dev",),
        ("eval",),
    ),
    "maestro-real": DatasetInfo(
        "maestro-real",
        "MAESTRO Real development set (Zenodo 7244360; Martin-Morato & Mesaros): minute-long recordings of five "
        "scenes with soft strong labels of 17 event classes, the DCASE 2023 Task 4B / 2024 Task 4 data",
        ("dev",),
    ),
    "desed": DatasetInfo(
        "desed",
        "DESED's public Zenodo parts: the DCASE synthetic soundscapes (dcase_synth) and the public evaluation set",
        ("synthetic", "eval"),
        manual_steps=(
            "DESED's weak and unlabelled training clips (and its real validation set) come from YouTube and cannot be "
            "fetched from one place. To add them: pip install desed, then in Python "
            "`import desed; desed.download_audioset_data('{root}')`; it fills {root}/audio and {root}/metadata "
            "(weak_16k, unlabel_in_domain_16k, validation_16k), where the desed dataset looks for them."
        ),
    ),
}


def load_packages() -> list[Package]:
    """Every row of the shipped registry."""
    text = resources.files("jasc_datasets").joinpath(PACKAGES_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return [
        Package(r["dataset"], r["part"], r["record"], r["filename"],
                None if r["bytes"] == "NA" else int(r["bytes"]), None if r["md5"] == "NA" else r["md5"].lower())
        for r in rows
    ]


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(f"no downloadable dataset '{name}'; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def packages_of(name: str, parts: tuple[str, ...] | None = None,
                registry: list[Package] | None = None) -> list[Package]:
    """The files of dataset ``name`` (its default parts unless ``parts`` names others)."""
    info = dataset_info(name)
    wanted = parts if parts is not None else info.default_parts
    unknown = [p for p in wanted if p not in info.default_parts + info.optional_parts]
    if unknown:
        raise DataError(f"{name} has no part {', '.join(unknown)}; parts: "
                        f"{', '.join(info.default_parts + info.optional_parts)}")
    rows = load_packages() if registry is None else registry
    return [p for p in rows if p.dataset == name and p.part in wanted]


def total_size(packages: list[Package]) -> tuple[int, int]:
    """(bytes of the files with a known size, how many files have no known size)."""
    return sum(p.size or 0 for p in packages), sum(p.size is None for p in packages)


def human_size(n: float) -> str:
    """Decimal units, as Zenodo shows sizes."""
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def size_text(packages: list[Package]) -> str:
    known, unknown = total_size(packages)
    if unknown == len(packages) and packages:
        return "size not published"
    return human_size(known) + (f" + {unknown} of unpublished size" if unknown else "")


def data_home() -> Path:
    """Where real datasets live by default: ``$JASC_DATA``, else the user data folder (``$XDG_DATA_HOME/jasc``,
    ``~/.local/share/jasc``; ``~/Library/Application Support/jasc`` on macOS, ``%LOCALAPPDATA%\\jasc`` on Windows)."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "jasc"
    if os.uname().sysname == "Darwin":
        return Path.home() / "Library" / "Application Support" / "jasc"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "jasc"


def default_root(name: str) -> Path:
    """The folder ``jasc data download NAME`` fills by default."""
    return data_home() / name
