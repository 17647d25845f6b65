"""Checkpoints: atomic writes, weights-only loading, exact RNG restore; run folders."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from jasc_core.errors import RunError
from jasc_core.runs import checkpoints as checkpoint
from jasc_core.runs.folder import create_run, open_run, recipe_hash


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"epoch": 1, "w": torch.ones(3)}, path)

    def broken_save(obj, handle):
        handle.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_atomic({"epoch": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    generator = torch.Generator().manual_seed(5)
    checkpoint.seed_everything(11)
    torch.rand(2), np.random.rand(), random.random()
    checkpoint.save_atomic({"rng": checkpoint.rng_state(generator)}, tmp_path / "s.pt")
    expected = (torch.rand(3), torch.randperm(10, generator=generator), np.random.rand(2), random.random())
    checkpoint.restore_rng_state(checkpoint.load_checkpoint(tmp_path / "s.pt")["rng"], generator)
    got = (torch.rand(3), torch.randperm(10, generator=generator), np.random.rand(2), random.random())
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert np.array_equal(got[2], expected[2]) and got[3] == expected[3]


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
