"""``jasc data download``: fetch a dataset's public files with pooch, check each md5, unpack archives safely.

Layout of a dataset folder (``<data home>/<name>`` by default):

- the archives' contents, unpacked in place (``TUT-sound-events-2016-development/audio/...``);
- plain files at their own path (``meta/meta_development.txt``);
- ``archives/``: downloads in progress or kept with ``--keep-archives`` (pooch writes each to a temporary name and
  moves it there only once its md5 matches);
- ``.jasc-download/<file>.json``: one marker per file, written last, once the file is verified and unpacked. Only a
  marker makes a file count as present: an interrupted download or extraction leaves none, and is redone.

Extraction checks every member before writing anything (no absolute path, no ``..``, no link or device), unpacks
into ``.extracting-<archive>/`` inside the dataset folder, moves the files into place, then writes the marker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from jasc_core import DataError
from jasc_datasets.digests import file_digest
from jasc_datasets.packages import Package, default_root, packages_of

log = logging.getLogger("jasc_datasets")

MARKER_DIR = ".jasc-download"
ARCHIVE_DIR = "archives"
EXTRACTING_PREFIX = ".extracting-"
RETRIES = 3


def marker_path(root: Path, package: Package) -> Path:
    return Path(root) / MARKER_DIR / (package.filename.replace("/", "__") + ".json")


def is_present(root: Path, package: Package) -> bool:
    return marker_path(root, package).is_file()


def missing_packages(name: str, root: Path | None = None, parts: tuple[str, ...] | None = None) -> list[Package]:
    """The files of ``name`` (default parts) that are not yet verified and unpacked under ``root``."""
    folder = Path(root) if root is not None else default_root(name)
    return [p for p in packages_of(name, parts) if not is_present(folder, p)]


# -- archive safety ----------------------------------------------------------------------------------------------


def _bad_name(name: str) -> str | None:
    """Why an archive member name would land outside the target, or None."""
    if not name or name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "a '..' component"
    return None


def check_members(archive: Path) -> None:
    """Refuse an archive any member of which would land outside the target folder or is a link or device."""
    problems: list[str] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                why = _bad_name(info.filename)
                # Unix mode in the high 16 bits; zips made elsewhere (or by writestr) carry no file type at all.
                kind = stat.S_IFMT(info.external_attr >> 16)
                if why is None and kind == stat.S_IFLNK:
                    why = "a link"
                elif why is None and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    why = "a device or special file"
                if why:
                    problems.append(f"member '{info.filename}' is {why}")
    else:
        try:
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    why = _bad_name(member.name)
                    if why is None and (member.issym() or member.islnk()):
                        why = f"a link (to '{member.linkname}')"
                    elif why is None and not (member.isfile() or member.isdir()):
                        why = "a device or special file"
                    if why:
                        problems.append(f"member '{member.name}' is {why}")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{archive}: not a readable zip or tar archive ({exc})") from None
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError(f"{archive}: refused, nothing extracted: {'; '.join(problems[:3])}{more}")


def _merge(source: Path, target: Path) -> None:
    """Move every file under ``source`` to the same relative path under ``target`` (same filesystem: renames)."""
    for folder, _dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(Path(folder) / name, target / relative / name)


def extract(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target`` safely; every member is checked first and the CRCs of zip members and of
    gzip streams are verified while reading, so a corrupt archive raises before anything reaches ``target``."""
    archive, target = Path(archive), Path(target)
    check_members(archive)
    staging = target / f"{EXTRACTING_PREFIX}{archive.name}"
    if staging.exists():  # left by an interrupted run: never trusted
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    zf.extract(info, staging)
        else:
            with tarfile.open(archive) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(staging, filter="data")
                else:  # pragma: no cover - Python < 3.11.4; members were checked above
                    tf.extractall(staging)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"{archive}: damaged archive ({exc}); delete it and download again") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _merge(staging, target)
    shutil.rmtree(staging)


# -- fetching ----------------------------------------------------------------------------------------------------


class _RichBar:
    """The progress-bar object pooch's HTTPDownloader drives (``total``, ``update``, ``reset``, ``close``)."""

    def __init__(self, label: str) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                  transient=True)
        self._task = self._progress.add_task(label, total=None)
        self._progress.start()

    @property
    def total(self) -> float | None:
        return self._progress.tasks[0].total

    @total.setter
    def total(self, value: float | None) -> None:
        self._progress.update(self._task, total=value)

    def update(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def reset(self) -> None:
        self._progress.reset(self._task)

    def close(self) -> None:
        self._progress.stop()




def fetch(package: Package, root: Path, progress: bool = False, retries: int = RETRIES) -> Path:
    """Download one file into ``root`` (archives into ``archives/``) unless a copy with the right md5 is there.

    pooch streams to a temporary file, checks the md5 and only then moves it to its name; a cut connection or a
    mismatch is retried ``retries`` times from the start, then fails, leaving nothing under the file's name.
    """
    import pooch
    import requests

    relative = f"{ARCHIVE_DIR}/{package.filename}" if package.is_archive else package.filename
    known = f"md5:{package.md5}" if package.md5 else None
    fetcher = pooch.create(path=root, base_url="", registry={relative: known},
                           urls={relative: package.url()}, retry_if_failed=retries)
    downloader = pooch.HTTPDownloader(progressbar=_RichBar(package.filename) if progress else False, timeout=60)
    try:
        return Path(fetcher.fetch(relative, downloader=downloader))
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise DataError(f"{package.where}: md5 does not match the published {package.md5}; the download was "
                        f"deleted ({exc})") from None
    except requests.exceptions.RequestException as exc:
        raise DataError(f"{package.where}: download from {package.url()} failed after {retries + 1} tries: "
                        f"{exc.__class__.__name__}: {exc}") from None


@dataclass
class Result:
    """What one ``download`` call did."""

    fetched: list[Package]
    already: list[Package]
    root: Path


def install(package: Package, root: Path, progress: bool = False, keep_archive: bool = False,
            on_unpack: Callable[[Package], None] | None = None, retries: int = RETRIES) -> None:
    """Fetch, verify and (archives) unpack one file, then write its marker last."""
    path = fetch(package, root, progress, retries)
    md5 = package.md5 or file_digest(path, "md5")
    if package.is_archive:
        if on_unpack:
            on_unpack(package)
        extract(path, root)
    marker = marker_path(root, package)
    marker.parent.mkdir(parents=True, exist_ok=True)
    record = {"record": package.record, "filename": package.filename, "md5": md5,
              "md5_published": package.md5 is not None, "bytes": path.stat().st_size}
    partial = marker.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, marker)
    if package.is_archive and not keep_archive:
        path.unlink()
        with contextlib.suppress(OSError):  # the archives/ folder goes once empty
            path.parent.rmdir()


def download(name: str, root: Path | None = None, parts: tuple[str, ...] | None = None, progress: bool = False,
             keep_archives: bool = False, report: Callable[[str], None] | None = None,
             retries: int = RETRIES) -> Result:
    """Make every file of ``name`` (its default ``parts``) present under ``root``; files already present are
    skipped. OS errors (unwritable folder, full disk) become one-line DataErrors naming the path and the reason."""
    folder = Path(root) if root is not None else default_root(name)
    say = report or (lambda _message: None)
    wanted = packages_of(name, parts)
    already = [p for p in wanted if is_present(folder, p)]
    todo = [p for p in wanted if not is_present(folder, p)]
    for index, package in enumerate(todo, 1):
        say(f"[{index}/{len(todo)}] {package.where}")
        if package.md5 is None:
            say(f"  no published md5 for {package.filename}: checked by reading the whole archive instead")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            install(package, folder, progress, keep_archives,
                    on_unpack=lambda p: say(f"  unpacking {p.filename}"), retries=retries)
        except OSError as exc:
            where = exc.filename or folder
            raise DataError(f"{where}: {exc.strerror or exc}") from None
    return Result(fetched=todo, already=already, root=folder)


def present_size(root: Path) -> int:
    """Bytes under ``root`` (what the dataset takes on disk now)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total
