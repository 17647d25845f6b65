"""What a run does when its folder cannot be written, the disk fills, the recipe was edited, or it is resumed oddly
(issue 16, items 1-4 and 6), through the console script where it is a CLI behaviour."""

from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path

import engine_fakes
import pytest
from cli_process import run_jasc
from test_run_folder_edges import TINY_RECIPE

from jasc_core import training
from jasc_core.errors import RunError
from jasc_core.recipes.model import identity_dict, load_recipe
from jasc_core.runs.folder import LEGACY_TRAINING_BLOCKS, open_run, recipe_hash


def _run(tmp_path, name="run", **overrides):
    recipe = engine_fakes.make_recipe(**{"evaluate.plots": False, **overrides})
    return training.run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / name)


def _mount_tmpfs(where: Path, options: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    return where


@pytest.fixture
def mounts():
    made: list[Path] = []

    def mount(where: Path, options: str) -> Path:
        made.append(_mount_tmpfs(where, options))
        return where

    yield mount
    for where in made:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _one_line_no_traceback(result, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_an_output_that_cannot_be_written_is_one_line_naming_path_and_reason(tmp_path, mounts):
    (tmp_path / "tiny.yaml").write_text(TINY_RECIPE)
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    result = run_jasc("run", "tiny.yaml", "--out", str(in_the_way), cwd=tmp_path)
    _one_line_no_traceback(result, str(in_the_way), "Not a directory")

    read_only = mounts(tmp_path / "ro", "ro,size=64k")
    result = run_jasc("run", "tiny.yaml", "--out", str(read_only / "run"), cwd=tmp_path)
    _one_line_no_traceback(result, str(read_only / "run"), "Read-only file system")
    result = run_jasc("run", "tiny.yaml", "--out", str(tmp_path / "run"), cwd=tmp_path,
                      env={"JASC_CACHE": str(read_only / "cache")})
    _one_line_no_traceback(result, str(read_only / "cache"), "Read-only file system")
    assert not (tmp_path / "run").exists()  # nothing to resume: the new run folder is removed
    result = run_jasc("data", "synth", "--preset", "tut-joint", "--minutes", "0.2", "--out", str(read_only / "d"))
    _one_line_no_traceback(result, str(read_only), "Read-only file system")


def test_a_full_disk_during_a_run_fails_the_run_with_the_reason(fakes, tmp_path, monkeypatch):
    from jasc_core.runs import checkpoints

    real = checkpoints.atomic_write
    calls = []

    def fill_up(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 2:  # epoch 1's best.pt and last.pt land, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "atomic_write", fill_up)
    with pytest.raises(RunError, match="No space left on device") as info:
        _run(tmp_path, **{"train.epochs": 3})
    assert str(calls[-1]) in str(info.value)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "failed" and "No space left on device" in meta["error"]
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()  # epoch 1's checkpoint is intact


def test_a_real_full_disk_fails_the_run_with_the_reason(tmp_path, mounts):
    # 320 KiB: room for the run folder and epoch 1's checkpoints, not for epoch 2's temporary last.pt.
    small = mounts(tmp_path / "small", "size=320k")
    (tmp_path / "tiny.yaml").write_text(TINY_RECIPE.replace("epochs: 1,", "epochs: 3,"))
    result = run_jasc("run", "tiny.yaml", "--out", str(small / "run"), cwd=tmp_path,
                      env={"JASC_CACHE": str(tmp_path / "cache")})
    _one_line_no_traceback(result, str(small / "run" / "checkpoints" / "last.pt"), "No space left on device")
    meta = json.loads((small / "run" / "run.json").read_text())
    assert meta["status"] == "failed" and "No space left on device" in meta["error"]
    assert (small / "run" / "checkpoints" / "last.pt").is_file()  # epoch 1's checkpoint is intact


def _interrupted(tmp_path, monkeypatch, epochs=3):
    overrides = {"evaluate.plots": False, "train.epochs": epochs}
    return engine_fakes.interrupted_run(monkeypatch, tmp_path / "killed", overrides, epoch=1)


def test_an_edited_recipe_resumes_with_the_recipe_stored_in_the_checkpoint(fakes, tmp_path, monkeypatch, caplog):
    whole = json.loads((_run(tmp_path, "whole", **{"train.epochs": 3}) / "history.json").read_text())
    killed = _interrupted(tmp_path, monkeypatch)
    recipe_file = killed / "recipe.yaml"
    recipe_file.write_text(recipe_file.read_text().replace("epochs: 3", "epochs: 30"))
    training.run_recipe(None, recipe_path=None, resume=killed)
    assert "was edited since the run started; resuming with the recipe stored in" in caplog.text
    resumed = json.loads((killed / "history.json").read_text())
    strip = [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in (whole, resumed)[0]]
    assert [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in resumed] == strip


def test_epochs_are_1_based_everywhere_a_person_reads_them(fakes, tmp_path):
    run_dir = _run(tmp_path, **{"train.epochs": 2})
    history = json.loads((run_dir / "history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2]
    best = json.loads((run_dir / "run.json").read_text())["best"]
    assert best["epoch"] in (1, 2) and history[best["epoch"] - 1]["selected"]


def test_resume_says_what_it_does_with_odd_folders(fakes, tmp_path, monkeypatch, caplog, cli):
    finished = _run(tmp_path, **{"train.epochs": 1})
    with pytest.raises(RunError, match="is a finished run; nothing to resume"):
        training.run_recipe(None, recipe_path=None, resume=finished)

    (tmp_path / "plain").mkdir()
    code, _, err = cli("run", "--resume", str(tmp_path / "plain"))
    assert code == 2 and "is not a jasc run folder" in err and "recipe.yaml:" not in err

    fresh = tmp_path / "fresh"
    killed_early = engine_fakes.make_recipe(**{"train.epochs": 1, "evaluate.plots": False})
    from jasc_core import __version__
    from jasc_core.recipes.model import dump_yaml, identity_dict
    from jasc_core.runs.folder import create_run, recipe_hash

    fresh.mkdir()
    create_run(fresh, recipe_yaml=dump_yaml(killed_early), identity=identity_dict(killed_early), version=__version__)
    assert recipe_hash(identity_dict(killed_early))
    training.run_recipe(None, recipe_path=None, resume=fresh)
    assert "has no checkpoint yet: training starts from epoch 1" in caplog.text

    original = training.Trainer.train_step

    def ctrl_c(self, step_input, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(training.Trainer, "train_step", ctrl_c)
    recipe_path = tmp_path / "fake.yaml"
    import yaml

    recipe_path.write_text(yaml.safe_dump(engine_fakes.recipe_data(**{"train.epochs": 1})))
    code, _, err = cli("run", str(recipe_path), "--out", str(tmp_path / "stopped"))
    monkeypatch.setattr(training.Trainer, "train_step", original)
    assert code == 130 and f"continue with: jasc run --resume {tmp_path / 'stopped'}" in err


def test_an_edited_augment_block_is_noticed_on_resume_like_any_other_training_block(fakes, tmp_path, monkeypatch,
                                                                                     caplog):
    killed = _interrupted(tmp_path, monkeypatch)
    recipe_file = killed / "recipe.yaml"
    text = recipe_file.read_text()
    assert "augment: []" in text
    recipe_file.write_text(text.replace("augment: []", "augment:\n- name: spec_mask"))
    training.run_recipe(None, recipe_path=None, resume=killed)
    assert "was edited since the run started; resuming with the recipe stored in" in caplog.text


def test_a_run_made_before_hashed_blocks_were_recorded_keeps_its_hash(fakes, tmp_path, monkeypatch):
    killed = _interrupted(tmp_path, monkeypatch)
    meta = json.loads((killed / "run.json").read_text())
    identity = identity_dict(load_recipe(killed / "recipe.yaml"))
    meta.pop("hashed_blocks")
    meta["recipe_hash"] = recipe_hash(identity, LEGACY_TRAINING_BLOCKS)  # what the older version wrote
    (killed / "run.json").write_text(json.dumps(meta))
    assert open_run(killed).recipe_hash(identity) == meta["recipe_hash"]
