"""JointModel and build_model with the Tonami components; the Tonami recipes' model blocks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import BaseModel

from jasc_core import ConfigError, PluginError
from jasc_core.model.pipeline import JointModel, build_model, match_frames

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SMALL_ENCODER = {"name": "tonami_cnn", "channels": [4, 4, 4]}
SMALL_SCENE = {"name": "tonami_scene", "channels": [4, 4]}
SMALL_EVENT = {"name": "bigru", "hidden_size": 4, "fc_units": 4}
CLASSES = {"scene": 3, "event": 5}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_joint_model_returns_logits_per_task():
    model = build_model({"encoder": SMALL_ENCODER, "heads": {"scene": SMALL_SCENE, "event": SMALL_EVENT}}, 64, CLASSES)
    assert isinstance(model, JointModel)
    assert model.tasks == ("scene", "event")
    outputs = model(torch.randn(2, 30, 64))
    assert outputs["scene"].shape == (2, 3)
    assert outputs["event"].shape == (2, 30, 5)


@pytest.mark.parametrize(("task", "head", "shape"), [("scene", SMALL_SCENE, (2, 3)), ("event", SMALL_EVENT, (2, 30, 5))])
def test_single_task_models_have_one_head(task, head, shape):
    model = build_model({"encoder": SMALL_ENCODER, "heads": {task: head}}, 64, {task: CLASSES[task]})
    outputs = model(torch.randn(2, 30, 64))
    assert list(outputs) == [task]
    assert outputs[task].shape == shape


def test_builder_accepts_pydantic_blocks():
    class Block(BaseModel):
        name: str
        channels: list[int] | None = None

    class Heads(BaseModel):
        scene: Block | None = None
        event: Block | None = None

    class ModelBlock(BaseModel):
        encoder: Block
        heads: Heads

    block = ModelBlock(encoder=Block(name="tonami_cnn", channels=[4, 4, 4]),
                       heads=Heads(scene=Block(name="tonami_scene", channels=[4, 4])))
    model = build_model(block, 64, CLASSES)
    assert model.tasks == ("scene",)
    assert model.encoder.out_channels == 4


def test_a_model_without_heads_is_a_config_error():
    for heads in ({}, {"scene": None, "event": None}):
        with pytest.raises(ConfigError, match="at least one head"):
            build_model({"encoder": SMALL_ENCODER, "heads": heads}, 64, CLASSES)
    with pytest.raises(ConfigError, match="at least one head"):
        JointModel(build_model({"encoder": SMALL_ENCODER, "heads": {"scene": SMALL_SCENE}}, 64, CLASSES).encoder, {})


def test_builder_errors_name_the_block():
    with pytest.raises(ConfigError, match="model.heads.speech: unknown task"):
        build_model({"encoder": SMALL_ENCODER, "heads": {"speech": SMALL_EVENT}}, 64, CLASSES)
    with pytest.raises(ConfigError, match="model.heads.event: the data gives no event class count"):
        build_model({"encoder": SMALL_ENCODER, "heads": {"event": SMALL_EVENT}}, 64, {"scene": 3})
    with pytest.raises(ConfigError, match="model.heads.scene.n_classes is 4 but the data has 3"):
        build_model({"encoder": SMALL_ENCODER, "heads": {"scene": {**SMALL_SCENE, "n_classes": 4}}}, 64, CLASSES)
    with pytest.raises(ConfigError, match="serves event, not 'scene'"):
        build_model({"encoder": SMALL_ENCODER, "heads": {"scene": SMALL_EVENT}}, 64, CLASSES)
    with pytest.raises(PluginError, match="no encoder 'tonami'"):
        build_model({"encoder": {"name": "tonami"}, "heads": {"scene": SMALL_SCENE}}, 64, CLASSES)
    with pytest.raises(ConfigError, match="model.encoder.name: missing"):
        build_model({"encoder": {"channels": [4]}, "heads": {"scene": SMALL_SCENE}}, 64, CLASSES)


def test_event_frames_match_the_input_after_time_pooling():
    encoder = {**SMALL_ENCODER, "time_pools": [2, 1, 1]}
    model = build_model({"encoder": encoder, "heads": {"event": SMALL_EVENT}}, 64, CLASSES)
    assert model(torch.randn(1, 31, 64))["event"].shape == (1, 31, 5)  # 31 -> 15 pooled -> 30 -> 31


def test_match_frames_trims_and_repeats_the_last_frame():
    x = torch.arange(6.0).reshape(1, 3, 2)
    assert torch.equal(match_frames(x, 2), x[:, :2])
    extended = match_frames(x, 5)
    assert torch.equal(extended[:, :3], x)
    assert torch.equal(extended[:, 3:], x[:, 2:].expand(1, 2, 2))


# -- the recipes' model blocks (read raw, so the test does not depend on other plugins being installed) -----------


def raw_recipe(name: str) -> dict:
    from jasc_core.recipes.files import load_raw

    return load_raw(RECIPES / name)


def test_official_code_recipe_counts_1328637_parameters():
    recipe = raw_recipe("tonami_official_code.yaml")
    model = build_model(recipe["model"], recipe["features"]["n_mels"], {"scene": 4, "event": 25})
    assert n_params(model) == 1_328_637


def test_conventional_recipe_is_001_table_iv():
    recipe = raw_recipe("tonami_conventional.yaml")
    assert recipe["weighting"] == {"name": "constant", "alpha": 0.001, "beta": 1.0}
    assert recipe["train"]["optimizer"]["name"] == "radam"
    assert recipe["evaluate"]["threshold"] == 0.5
    assert recipe["data"]["name"] == "joint"
    model = build_model(recipe["model"], recipe["features"]["n_mels"], {"scene": 4, "event": 25})
    assert n_params(model) == 1_250_429


@pytest.mark.parametrize(("name", "task"), [("tonami_cnn_asc.yaml", "scene"), ("tonami_cnn_bigru_sed.yaml", "event")])
def test_single_task_recipes_have_one_head(name, task):
    recipe = raw_recipe(name)
    assert list(recipe["model"]["heads"]) == [task]
    model = build_model(recipe["model"], recipe["features"]["n_mels"], {task: 4 if task == "scene" else 25})
    assert model.tasks == (task,)


@pytest.mark.parametrize(
    "name", ["tonami_official_code.yaml", "tonami_conventional.yaml", "tonami_cnn_asc.yaml", "tonami_cnn_bigru_sed.yaml"]
)
def test_recipes_validate_when_their_components_are_installed(name):
    from jasc_core.contract.registry import get_registry
    from jasc_core.recipes.model import load_recipe

    registry = get_registry()
    needed = [("dataset", "joint"), ("features", "logmel"), ("weighting", "constant"), ("schedule", "soft")]
    missing = [f"{kind} {n}" for kind, n in needed if n not in registry.names(kind)]
    if missing:
        pytest.skip(f"not installed yet: {', '.join(missing)}")
    recipe = load_recipe(RECIPES / name, ["data.root=/tmp/anywhere"])
    assert recipe.data.root == "/tmp/anywhere"
