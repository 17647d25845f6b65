"""Recipes: loading, extends, --set, validation messages for every kind of bad input, the resolved recipe."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jasc_core import ConfigError
from jasc_core.recipes.files import deep_merge
from jasc_core.recipes.model import build, dump_yaml, load_recipe, recipe_schema, resolved_dict


def write(path, text):
    path.write_text(text)
    return path


def error_of(path, sets=()):
    with pytest.raises(ConfigError) as info:
        load_recipe(path, sets)
    return str(info.value)


def test_valid_recipe_defaults_filled(toy_registry, toy_recipe):
    recipe = load_recipe(toy_recipe)
    assert recipe.weighting.name == "toy_weighting" and recipe.weighting.scale == 2.0
    assert recipe.weighting.temperature == 2.0  # Config default
    assert recipe.train.epochs == 2 and recipe.train.batch_size == 16
    assert recipe.model.heads.event is None


def test_resolved_recipe_round_trips(toy_registry, toy_recipe, tmp_path):
    recipe = load_recipe(toy_recipe)
    again = load_recipe(write(tmp_path / "resolved.yaml", dump_yaml(recipe)))
    assert resolved_dict(again) == resolved_dict(recipe)
    assert list(resolved_dict(recipe))[:3] == ["description", "seed", "data"]


def test_build_component_from_block(toy_registry, toy_recipe):
    recipe = load_recipe(toy_recipe)
    weighting = build("weighting", recipe.weighting)
    assert weighting.config.scale == 2.0
    head = build("head", recipe.model.heads.scene, task="scene", n_classes=3, in_channels=4, in_features=1)
    assert head.fc.out_features == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: [unclosed", r"invalid YAML at line 1"),
        ("", r"the recipe is empty"),
        ("- data\n- model\n", r"a recipe is a mapping of blocks"),
        ("EXTRA\nfoo: 1\n", r"foo: unknown block"),
        ("EXTRA\nwieghting: {name: toy_weighting}\n", r"wieghting: unknown block; did you mean 'weighting'\?"),
        ("weighting: {name: toy_weighting, scal: 2}\n", r"weighting\.scal: extra field; did you mean 'scale'\?"),
        ("weighting: {name: toy_weighting, scale: big}\n", r"weighting\.scale: Input should be a valid number"),
        ("weighting: {name: toy_weightng}\n", r"weighting\.name: no weighting 'toy_weightng'; installed: .*did you mean "
                                               r"'toy_weighting'\?"),
        ("weighting: {scale: 2}\n", r"weighting\.name: required, missing; weighting components: .*toy_weighting"),
        ("weighting: [toy_weighting]\n", r"weighting: expected a block \{name: \.\.\., <fields>\}, got list"),
        ("EXTRA\ntrain: {epochs: -3}\n", r"train\.epochs: Input should be greater than or equal to 1 \(got -3\)"),
        ("EXTRA\nevaluate: {threshold: 1.5}\n", r"evaluate\.threshold: Input should be less than or equal to 1"),
        ("EXTRA\ntrain: {optimizer: {name: radan}}\n", r"train\.optimizer\.name: .*did you mean 'radam'\?"),
        ("EXTRA\ntrain: {epocs: 3}\n", r"train\.epocs: extra field; did you mean 'epochs'\?"),
        ("EXTRA\nmodel: {heads: {scene: null}}\n", r"model\.heads: a model needs at least one head"),
        ("EXTRA\nmodel: {heads: {sceen: {name: toy_scene}}}\n", r"model\.heads\.sceen: extra field; did you mean "
                                                                 r"'scene'\?"),
        ("EXTRA\nmodel: {heads: {event: {name: toy_scene}}}\n", r"model\.heads\.event: head 'toy_scene' serves scene, "
                                                                 r"not event"),
    ],
)
def test_bad_recipes_name_the_path(toy_registry, tmp_path, text, message):
    import core_components

    if text.startswith("EXTRA\n"):  # a valid recipe with one block overridden
        text = yaml.safe_dump(deep_merge(yaml.safe_load(core_components.TOY_RECIPE), yaml.safe_load(text[6:])))
    elif text.startswith("weighting"):
        base = yaml.safe_load(core_components.TOY_RECIPE)
        base.pop("weighting")
        text = yaml.safe_dump(base) + text
    assert __import__("re").search(message, error_of(write(tmp_path / "bad.yaml", text))), error_of(tmp_path / "bad.yaml")


def test_missing_required_block(toy_registry, tmp_path):
    import core_components

    base = yaml.safe_load(core_components.TOY_RECIPE)
    del base["data"]
    assert "data: required, missing" in error_of(write(tmp_path / "r.yaml", yaml.safe_dump(base)))


def test_missing_recipe_file(tmp_path):
    assert "no such recipe file" in error_of(tmp_path / "nope.yaml")


def test_extends_deep_merges_relative_to_recipe(toy_registry, toy_recipe, tmp_path):
    (tmp_path / "sub").mkdir()
    child = write(tmp_path / "sub" / "child.yaml", "extends: ../toy.yaml\nweighting: {scale: 3.0}\ntrain: {batch_size: 4}\n")
    recipe = load_recipe(child)
    assert recipe.weighting.scale == 3.0 and recipe.weighting.name == "toy_weighting"
    assert recipe.train.batch_size == 4 and recipe.train.epochs == 2  # merged, not replaced


def test_extends_switching_component_replaces_block():
    merged = deep_merge({"weighting": {"name": "constant", "alpha": 0.1}}, {"weighting": {"name": "mfl", "gamma": 2}})
    assert merged == {"weighting": {"name": "mfl", "gamma": 2}}


def test_extends_missing_file(toy_registry, tmp_path):
    message = error_of(write(tmp_path / "c.yaml", "extends: base.yaml\n"))
    assert "extends: no such file 'base.yaml'" in message and "c.yaml" in message


def test_extends_cycle(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    assert "extends cycle: a.yaml -> b.yaml -> a.yaml" in error_of(tmp_path / "a.yaml")
    assert "extends cycle: s.yaml -> s.yaml" in error_of(write(tmp_path / "s.yaml", "extends: s.yaml\n"))


def test_set_overrides_scalars_and_mappings(toy_registry, toy_recipe):
    recipe = load_recipe(toy_recipe, ["train.epochs=7", "weighting={name: toy_weighting, scale: 0.5}",
                                      "train.optimizer.lr=1e-2"])
    assert recipe.train.epochs == 7 and recipe.weighting.scale == 0.5 and recipe.train.optimizer.lr == 0.01


def test_set_on_missing_path(toy_registry, toy_recipe):
    assert "weighting.scael: extra field; did you mean 'scale'? (from --set weighting.scael)" in error_of(
        toy_recipe, ["weighting.scael=1"])
    assert "nothing: unknown block" in error_of(toy_recipe, ["nothing.at.all=1"])
    assert "'train.epochs' is 2, not a block with fields" in error_of(toy_recipe, ["train.epochs.x=1"])
    assert "expected PATH=VALUE" in error_of(toy_recipe, ["train.epochs"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(epochs=st.integers(min_value=1, max_value=10_000), scale=st.floats(min_value=1e-6, max_value=1e6))
def test_set_values_round_trip(toy_registry, toy_recipe, epochs, scale):
    recipe = load_recipe(toy_recipe, [f"train.epochs={epochs}", f"weighting.scale={scale!r}"])
    assert recipe.train.epochs == epochs and recipe.weighting.scale == pytest.approx(scale)


@settings(max_examples=50, deadline=None)
@given(st.recursive(st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=3),
                    lambda inner: st.dictionaries(st.sampled_from("abc"), inner, max_size=3), max_leaves=8),
       st.recursive(st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=3),
                    lambda inner: st.dictionaries(st.sampled_from("abc"), inner, max_size=3), max_leaves=8))
def test_deep_merge_properties(base, override):
    merged = deep_merge(base, override)
    assert deep_merge(merged, override) == merged  # applying the same override twice changes nothing
    for key, value in override.items():
        if not isinstance(value, dict):
            assert merged[key] == value  # scalars in the override always win
    assert set(merged) == set(base) | set(override)


def test_schema_lists_registered_components(toy_registry):
    schema = recipe_schema()
    text = __import__("json").dumps(schema)
    assert "toy_weighting" in text and "extends" in schema["properties"]
