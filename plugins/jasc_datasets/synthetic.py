"""The ``synthetic`` dataset: procedural soundscapes materialised into a cache folder, read by the real loaders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from jasc_core import ClipList, Dataset
from jasc_datasets.dcase_formats import Disjoint
from jasc_datasets.joint import Joint
from jasc_datasets.synthesis.presets import get_preset
from jasc_datasets.synthesis.writer import Progress, config_hash, generation_key, materialize

CACHE_ENV = "JASC_CACHE"


def default_cache_dir() -> Path:
    """``$JASC_CACHE``, else ``~/.cache/jasc``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "jasc")


def synthesize(
    preset: str,
    out: str | Path,
    minutes: float,
    seed: int = 0,
    sample_rate: int = 44100,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[Path, bool]:
    """Write a synthetic dataset into ``out`` (atomically; reused when complete with the same settings).

    Returns ``(folder, generated)``; ``generated`` is False when a complete identical folder was already there.
    """
    spec = get_preset(preset)
    key = generation_key(preset, minutes, seed, sample_rate, getattr(spec, "version", None))

    def build(folder: Path, report: Progress | None) -> dict:
        return spec.build(folder, minutes, seed, sample_rate, report)

    return materialize(out, key, build, force=force, progress=progress)


def reader_for(preset: str, folder: str | Path, clip_seconds: float | None = None, skip_bad_files: bool = False):
    """The loader that reads a folder written by ``preset`` (``joint`` or ``disjoint``), with its full vocabulary."""
    spec = get_preset(preset)
    scenes, events = spec.vocabularies()
    folder = str(folder)
    if spec.reader == "joint":
        block = {"root": folder, "scene_labels": scenes, "event_labels": events, "skip_bad_files": skip_bad_files}
        if clip_seconds is not None:
            block["clip_seconds"] = clip_seconds
        return Joint(block)
    tau = {"root": os.path.join(folder, "tau"), "scene_labels": scenes, "skip_bad_files": skip_bad_files}
    desed = {"root": os.path.join(folder, "desed"), "event_labels": events, "skip_bad_files": skip_bad_files}
    if clip_seconds is not None:
        desed["clip_seconds"] = clip_seconds
    return Disjoint({"tau": tau, "desed": desed})


class Synthetic(Dataset):
    """Procedural soundscapes mirroring the papers' data (presets tut-joint, dcase-disjoint), cached on disk."""

    name = "synthetic"

    class Config(BaseModel):
        preset: Literal["tut-joint", "dcase-disjoint"] = Field(
            "tut-joint", description="tut-joint: 4 scenes, 25 events, joint labels; dcase-disjoint: TAU-like scene "
            "clips + DESED-like event clips"
        )
        minutes: float = Field(20.0, gt=0, le=100_000, description="minutes of audio to generate")
        seed: int = Field(0, ge=0, description="random seed; same preset, minutes, seed and rate: identical files")
        sample_rate: int = Field(44100, ge=8000, le=192_000, description="sample rate of the generated files (Hz)")
        cache_dir: str | None = Field(
            None, description="cache folder; default $JASC_CACHE or ~/.cache/jasc (data goes in synthetic/<hash>/)"
        )
        clip_seconds: float | None = Field(
            None, gt=0, description="clip length for the loader; default: the preset's (10 s, TAU part 1 s)"
        )
        skip_bad_files: bool = Field(False, description="passed to the loader")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._reader: Dataset | None = None

    def folder(self) -> Path:
        """Where this configuration's data lives: ``<cache_dir>/synthetic/<preset>-<hash of the settings>``."""
        cfg = self.config
        cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
        key = generation_key(cfg.preset, cfg.minutes, cfg.seed, cfg.sample_rate,
                             getattr(get_preset(cfg.preset), "version", None))
        return cache / "synthetic" / f"{cfg.preset}-{config_hash(key)}"

    @property
    def reader(self) -> Dataset:
        if self._reader is None:
            self.prepare()
        return self._reader

    @property
    def skipped(self) -> list[str]:
        return getattr(self.reader, "skipped", [])

    def prepare(self) -> None:
        cfg = self.config
        folder, _ = synthesize(cfg.preset, self.folder(), cfg.minutes, cfg.seed, cfg.sample_rate)
        self._reader = reader_for(cfg.preset, folder, cfg.clip_seconds, cfg.skip_bad_files)
        self._reader.prepare()

    def splits(self) -> list[str]:
        return self.reader.splits()

    def load(self, split: str) -> ClipList:
        return self.reader.load(split)

    def audio(self, clip, sample_rate: int):
        return self.reader.audio(clip, sample_rate)
