"""Run folders and the files jasc writes, as a user on a shared machine meets them (issue 16)."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from cli_process import run_jasc

from jasc_core.runs.atomic_files import atomic_write, default_file_mode
from jasc_core.runs.checkpoints import save_atomic
from jasc_core.runs.folder import update_json_entry, write_json

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
    save_atomic({"epoch": 0, "model": {}}, tmp_path / "last.pt")
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


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real `jasc run` then `jasc thresholds tune` of TINY_RECIPE under umask 027: (folder, run output)."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY_RECIPE)
    env = {"JASC_CACHE": str(folder / "cache"), "COLUMNS": None}

    def as_user(*args: str):
        return run_jasc(*args, env=env, cwd=folder, preexec_fn=lambda: os.umask(0o027))

    run = as_user("run", "tiny.yaml", "--out", "run")
    assert run.returncode == 0, run.stderr
    tune = as_user("thresholds", "tune", "run")
    assert tune.returncode == 0, tune.stderr
    return folder / "run", run


def test_a_real_run_folder_is_readable_by_the_group_under_umask_027(tiny_run):
    run, _ = tiny_run
    written = ["run.json", "recipe.yaml", "metrics.json", "history.json", "thresholds.json",
               "checkpoints/best.pt", "checkpoints/last.pt"]
    modes = {name: oct(_mode(run / name)) for name in written}
    assert modes == {name: oct(0o640) for name in written}


def test_psds_printed_by_a_run_comes_with_its_footnote(tiny_run):
    _, result = tiny_run
    assert "PSDS1" in result.stdout
    assert "PSDS: per-class ROC averaged minus 1 x the spread of the per-class true positive rates" in result.stdout
    assert "classes with reference events have collar-F1 0 at the decision threshold" in result.stdout


def _update_many(path: str, prefix: str, n: int) -> None:
    for i in range(n):
        update_json_entry(Path(path), f"{prefix}{i}", i)


def test_two_processes_updating_one_json_file_lose_no_entry(tmp_path):
    # Two evaluations of one run at once (student and teacher, or two splits) each add their entry to metrics.json;
    # an unlocked read-change-write lost one of them.
    path = tmp_path / "metrics.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_update_many, args=(str(path), prefix, 40)) for prefix in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert sorted(json.loads(path.read_text())) == sorted(f"{p}{i}" for p in "ab" for i in range(40))
