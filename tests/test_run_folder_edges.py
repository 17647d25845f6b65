"""Run folders and the files jasc writes, as a user on a shared machine meets them (issue 16)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_process import run_jasc

from jasc_core.atomic_files import atomic_write, default_file_mode
from jasc_core.checkpoint import save_atomic
from jasc_core.runs import write_json

# A recipe small enough that a real run (synthesis, one epoch, evaluation) takes seconds on one CPU thread.
TINY_RECIPE = """\
seed: 0
data: {name: synthetic, preset: tut-joint, minutes: 1, sample_rate: 8000}
features: {name: logmel, sample_rate: 8000, n_mels: 32, win_ms: 40, hop_ms: 40}
model:
  encoder: {name: tonami_cnn, channels: [4, 4, 4]}
  heads:
    scene: {name: tonami_scene, channels: [4, 4]}
    event: {name: bigru, dropout: 0.0}
weighting: {name: constant}
schedule: {name: soft}
train: {epochs: 1, batch_size: 8}
evaluate: {split: eval, plots: false}
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert default_file_mode() == 0o666 & ~mask
    write_json(tmp_path / "run.json", {"status": "done"})
    save_atomic({"epoch": 0}, tmp_path / "last.pt")
    with atomic_write(tmp_path / "notes.txt", "w", encoding="utf-8") as handle:
        handle.write("x")
    for name in ("run.json", "last.pt", "notes.txt"):
        assert _mode(tmp_path / name) == 0o666 & ~mask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "notes.txt", "run.json"]  # no temp files left


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_real_run_folder_is_readable_by_the_group_under_umask_027(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_RECIPE)
    env = {"JASC_CACHE": str(tmp_path / "cache")}

    def as_user(*args: str):
        return run_jasc(*args, env=env, cwd=tmp_path, preexec_fn=lambda: os.umask(0o027))

    result = as_user("run", "tiny.yaml", "--out", "run")
    assert result.returncode == 0, result.stderr
    result = as_user("thresholds", "tune", "run")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    written = ["run.json", "recipe.yaml", "metrics.json", "history.json", "thresholds.json",
               "checkpoints/best.pt", "checkpoints/last.pt"]
    modes = {name: oct(_mode(run / name)) for name in written}
    assert modes == {name: oct(0o640) for name in written}
