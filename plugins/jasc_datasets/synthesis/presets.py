"""Synthetic dataset presets: what each writes into a folder, and how that folder is read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jasc_core import DataError
from jasc_datasets.joint_format import write_joint
from jasc_datasets.synthesis import tut_joint
from jasc_datasets.synthesis.writer import Progress, write_wav

#: Keys mixed into every clip's random seed so that presets never share random streams.
PRESET_KEYS = {"tut-joint": 1, "dcase-disjoint": 2}


def clip_rng(seed: int, preset: str, index: int) -> np.random.Generator:
    """The random generator of one clip: a pure function of (seed, preset, clip index), independent of order."""
    return np.random.default_rng([int(seed), PRESET_KEYS[preset], int(index)])


def split_sizes(n_total: int, eval_share: float, val_share: float) -> dict[str, int]:
    """Clips per split (train, val, eval); every split gets at least one clip when there are three or more."""
    n_eval = int(round(n_total * eval_share))
    n_val = int(round((n_total - n_eval) * val_share))
    if n_total >= 3:
        n_eval, n_val = max(n_eval, 1), max(n_val, 1)
    n_eval, n_val = min(n_eval, n_total), min(n_val, max(n_total - n_eval, 0))
    return {"train": n_total - n_eval - n_val, "val": n_val, "eval": n_eval}


def split_plan(sizes: dict[str, int]) -> list[str]:
    return [split for split, count in sizes.items() for _ in range(count)]


@dataclass(frozen=True)
class TutJoint:
    """4 scenes, 25 event classes, 10-s clips; the papers' TUT statistics as prior; joint format, meta/<split>.tsv."""

    name: str = "tut-joint"
    reader: str = "joint"

    def vocabularies(self) -> tuple[list[str], list[str]]:
        return list(tut_joint.SCENES), tut_joint.event_labels(tut_joint.load_stats())

    def build(self, folder: Path, minutes: float, seed: int, sample_rate: int, progress: Progress | None) -> dict:
        stats = tut_joint.load_stats()
        n_total = max(1, int(round(minutes * 60.0 / tut_joint.CLIP_SECONDS)))
        sizes = split_sizes(n_total, tut_joint.EVAL_SHARE, tut_joint.VAL_SHARE)
        rows: dict[str, list] = {split: [] for split in sizes}
        for index, split in enumerate(split_plan(sizes)):
            # Scenes rotate over the clip index: every split is balanced over the four scenes.
            scene = tut_joint.SCENES[index % len(tut_joint.SCENES)]
            audio, events = tut_joint.synthesize_clip(clip_rng(seed, self.name, index), scene, stats, sample_rate)
            relpath = f"audio/{split}/clip_{index:05d}.wav"
            write_wav(folder / relpath, audio, sample_rate)
            rows[split].append((relpath, scene, events))
            if progress:
                progress(index + 1, n_total)
        (folder / "meta").mkdir(exist_ok=True)
        for split, split_rows in rows.items():
            write_joint(str(folder / "meta" / f"{split}.tsv"), split_rows)
        return {"reader": self.reader, "splits": sizes, "clip_seconds": tut_joint.CLIP_SECONDS}


def get_preset(name: str) -> Any:
    from jasc_datasets.synthesis.dcase_disjoint import DcaseDisjoint

    presets = {"tut-joint": TutJoint(), "dcase-disjoint": DcaseDisjoint()}
    if name not in presets:
        raise DataError(f"no synthetic preset '{name}'; presets: {', '.join(presets)}")
    return presets[name]


PRESET_NAMES = ("tut-joint", "dcase-disjoint")
