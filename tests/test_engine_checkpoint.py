"""Checkpoints: atomic writes, weights-only loading, exact RNG restore; run folders."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from jasc_core.errors import RunError
from jasc_core.runs import checkpoints as checkpoint
from jasc_core.runs import rng
from jasc_core.runs.folder import create_run, open_run, recipe_hash


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"epoch": 1, "model": {"w": torch.ones(3)}}, path)

    def broken_save(obj, handle):
        handle.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_atomic({"epoch": 2, "model": {}}, path)
    monkeypatch.undo()
    assert checkpoint.load_checkpoint(path).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    generator = torch.Generator().manual_seed(5)
    rng.seed_everything(11)
    torch.rand(2), np.random.rand(), random.random()
    checkpoint.save_atomic({"rng": rng.rng_state(generator)}, tmp_path / "s.pt")
    expected = (torch.rand(3), torch.randperm(10, generator=generator), np.random.rand(2), random.random())
    rng.restore_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"], generator)
    got = (torch.rand(3), torch.randperm(10, generator=generator), np.random.rand(2), random.random())
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert np.array_equal(got[2], expected[2]) and got[3] == expected[3]


def test_a_checkpoint_round_trips_and_keeps_the_flat_layout_of_format_2(tmp_path):
    training = checkpoint.TrainingState(
        phase=0, optimizer={"state": {}}, lr_scheduler={}, weighting={}, schedule={}, streams={"scene": {}},
        rng={"torch": torch.get_rng_state()}, augment_rng=torch.Generator().get_state(), history=[{"epoch": 1}],
        bad_epochs=0, stopped=False, recipe={"seed": 0})
    saved = checkpoint.Checkpoint(epoch=0, step=3, model={"w": torch.ones(2)}, extra_models={}, recipe_hash="h",
                                  labels={"scene": ["a"]}, tasks=["scene"], best={"metric": "val/score"},
                                  training=training)
    saved.save(tmp_path / "last.pt")
    flat = torch.load(tmp_path / "last.pt", weights_only=True)
    # The keys runs written before the dataclass hold: their folders still evaluate, predict and resume.
    assert {"format", "epoch", "step", "phase", "model", "optimizer", "streams", "rng", "augment_rng", "history",
            "recipe_hash", "recipe", "labels", "tasks", "best", "bad_epochs", "stopped"} <= set(flat)
    loaded = checkpoint.load_checkpoint(tmp_path / "last.pt")
    assert loaded.check_resumable("h").history == [{"epoch": 1}] and loaded.step == 3
    best = loaded.model_only({"val/score": 0.5})
    best.save(tmp_path / "best.pt")
    assert checkpoint.load_checkpoint(tmp_path / "best.pt").training is None
    with pytest.raises(RunError, match="different recipe"):
        loaded.check_resumable("other")
    with pytest.raises(RunError, match="format 0"):
        checkpoint.Checkpoint.from_dict({**flat, "format": 0}, tmp_path / "old.pt").check_resumable("h")


def test_a_file_without_model_weights_is_not_a_checkpoint(tmp_path):
    torch.save({"epoch": 1}, tmp_path / "x.pt")
    with pytest.raises(RunError, match="not a jasc checkpoint"):
        checkpoint.load_checkpoint(tmp_path / "x.pt")


def test_a_truncated_checkpoint_is_a_run_error(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="cannot be loaded"):
        checkpoint.load_checkpoint(tmp_path / "bad.pt")


def test_open_run_checks_the_folder(tmp_path):
    with pytest.raises(RunError, match="not a run folder"):
        open_run(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunError, match="run.json, recipe.yaml missing"):
        open_run(tmp_path / "plain")
    run = create_run(tmp_path / "r", recipe_yaml="seed: 0\n", identity={"seed": 0}, version="x")
    assert open_run(run.root).read_meta()["recipe_hash"] == recipe_hash({"seed": 0})
    assert run.checkpoints.is_dir() and run.predictions.is_dir() and run.plots.is_dir()


def test_recipe_hash_ignores_evaluation_and_output_blocks():
    base = {"seed": 0, "train": {"epochs": 2}, "evaluate": {"threshold": 0.5}, "output": {"dir": "a"}}
    assert recipe_hash(base) == recipe_hash(base | {"evaluate": {"threshold": 0.3}, "output": {"dir": "b"}})
    assert recipe_hash(base) != recipe_hash(base | {"train": {"epochs": 3}})


def test_recipe_identity_leaves_out_defaults_so_new_fields_keep_old_runs_resumable(fakes):
    """A field a newer jasc adds (with its default) is absent from the identity, so the hash of a recipe that does
    not set it stays the same; any value set away from its default changes the hash."""
    import engine_fakes

    from jasc_core.recipes.model import identity_dict

    plain = engine_fakes.make_recipe()
    spelled_out = engine_fakes.make_recipe(**{"train.precision": "fp32", "train.compile": False,
                                              "train.sync_batchnorm": False, "train.streams": None})
    assert identity_dict(plain) == identity_dict(spelled_out)
    assert "precision" not in identity_dict(plain).get("train", {})
    assert recipe_hash(identity_dict(plain)) == recipe_hash(identity_dict(spelled_out))
    assert recipe_hash(identity_dict(plain)) != recipe_hash(identity_dict(engine_fakes.make_recipe(
        **{"train.precision": "bf16"})))
