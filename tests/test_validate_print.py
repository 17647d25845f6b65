"""``jasc validate RECIPE --print / --json``: the resolved recipe a run would write, without data or training."""

from __future__ import annotations

import json

import yaml


def test_print_gives_the_resolved_recipe_that_a_run_writes(cli, toy_registry, toy_recipe, tmp_path):
    from jasc_core.recipes.model import dump_yaml, load_recipe

    code, out, err = cli("validate", str(toy_recipe), "--print", "--set", "train.epochs=3")
    assert code == 0, err
    loaded = load_recipe(toy_recipe, ["train.epochs=3"])
    assert out == dump_yaml(loaded)  # exactly what recipe.yaml of a run holds
    printed = yaml.safe_load(out)
    assert printed["train"]["epochs"] == 3
    assert printed["train"]["optimizer"]["lr"] == 1e-3  # a default the toy recipe does not state
    assert printed["log"] == [] and printed["model"]["init"] is None
    assert "ok" not in out and "dry run" not in out  # nothing but the recipe: it can be saved and run
    saved = tmp_path / "resolved.yaml"
    saved.write_text(out)
    code, again, _ = cli("validate", str(saved), "--print")
    assert code == 0 and again == out


def test_json_prints_the_same_recipe(cli, toy_registry, toy_recipe):
    from jasc_core.recipes.model import load_recipe, resolved_dict

    code, out, _ = cli("validate", str(toy_recipe), "--json")
    assert code == 0
    assert json.loads(out) == resolved_dict(load_recipe(toy_recipe))


def test_print_of_a_bad_recipe_is_the_usual_error(cli, toy_registry, toy_recipe):
    code, out, err = cli("validate", str(toy_recipe), "--print", "--set", "train.epochs=-1")
    assert code == 2 and out == "" and "train.epochs" in err
    code, _, err = cli("validate", str(toy_recipe), "--print", "--json")
    assert code == 2 and "choose one" in err
