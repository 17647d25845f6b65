"""`jasc validate` builds the recipe's model and runs it once on silence (issue 16 item 8)."""

from __future__ import annotations

from pathlib import Path

import core_components
import pytest
import torch
from cli_process import run_jasc

from jasc_core.errors import ConfigError
from jasc_core.model.dry_run import dry_run
from jasc_core.recipes.model import load_recipe

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"


def test_validate_refuses_what_run_refuses_at_once():
    result = run_jasc("validate", str(QUICKSTART), "--set", "features.n_mels=1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "encoder tonami_cnn" in result.stderr and "pool 1 features down to nothing" in result.stderr, result.stderr


def test_validate_ok_reports_the_dry_run():
    result = run_jasc("validate", str(QUICKSTART))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "dry run on 1 s of silence: features [1, 25, 64]" in text
    assert "model.heads.event [1, 25, 25]; classes: scene 4 (placeholder), event 25 (placeholder)" in text


def test_dry_run_of_the_quickstart_recipe_gives_the_heads_shapes(jasc_registry):
    # Its speed (about 11 ms here) is not timed in a test: this machine is shared and a timing assertion flakes.
    report = dry_run(load_recipe(QUICKSTART))
    assert report.shapes["model.heads.scene"] == [1, 4]


def test_dry_run_uses_the_stated_clip_length_and_class_counts(jasc_registry):
    recipe = load_recipe(ROOT / "recipes" / "tonami_conventional.yaml")
    report = dry_run(recipe)
    assert report.seconds == float(recipe.data.clip_seconds)
    assert report.n_classes_source == {"scene": "model.heads.scene.n_classes", "event": "model.heads.event.n_classes"}


def _fail(*_args, **_kwargs):
    raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")


@pytest.mark.parametrize(("patch", "message"), [
    ((core_components.ToyEncoder, "forward", _fail),
     "model.encoder (toy_encoder): RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ((core_components.ToySceneHead, "forward", _fail),
     "model.heads.scene (toy_scene): RuntimeError: mat1"),
    ((core_components.ToyFeatures, "forward", _fail), "features (toy_features): RuntimeError: mat1"),
    ((core_components.ToyEncoder, "forward", lambda self, features: torch.zeros(1, 4, 0, 1)),
     "model.encoder (toy_encoder): turns features of shape [1, 10, 10] (1 s) into an empty tensor of shape [1, 4, 0, 1]"),
    ((core_components.ToySceneHead, "forward", lambda self, feature_map: torch.zeros(1, 7)),
     "model.heads.scene (toy_scene): outputs 7 classes, expected"),
])
def test_validate_names_the_component_that_fails(cli, toy_registry, toy_recipe, monkeypatch, patch, message):
    monkeypatch.setattr(*patch)
    code, _, err = cli("validate", str(toy_recipe))
    assert code == 2 and message in " ".join(err.split()), err


def test_a_component_failing_while_built_is_named(toy_registry, toy_recipe, monkeypatch):
    original = core_components.ToySceneHead.__init__

    def broken_init(self, config=None, **kwargs):
        original(self, config, **kwargs)
        raise ValueError("in_channels must be even")

    monkeypatch.setattr(core_components.ToySceneHead, "__init__", broken_init)
    with pytest.raises(ConfigError, match=r"model\.heads\.scene \(toy_scene\): ValueError: in_channels must be even"):
        dry_run(load_recipe(toy_recipe))
