"""One override rule for ``extends`` and ``--set``: a new component ``name`` starts its block from that component's
defaults, keeping only what the overriding layer sets, and names every dropped field in one warning line. The
recipes that say they share the quickstart's or the conventional row's weights do share them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from jasc_core.errors import ConfigError
from jasc_core.recipes.files import apply_sets, deep_merge, load_raw
from jasc_core.recipes.model import BaseRecipeError, load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "jasc" and r.levelno == logging.WARNING]


def test_extends_switch_keeps_the_overriding_layer_and_names_what_it_drops(tmp_path, caplog):
    (tmp_path / "base.yaml").write_text("weighting: {name: dwa, alpha: 0.01, temperature: 2.0}\nseed: 3\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nweighting: {name: mfl, gamma: 2.0}\n")
    with caplog.at_level(logging.WARNING, logger="jasc"):
        data = load_raw(tmp_path / "child.yaml")
    assert data == {"weighting": {"name": "mfl", "gamma": 2.0}, "seed": 3}
    lines = warnings_of(caplog)
    assert len(lines) == 1 and "child.yaml" in lines[0] and "weighting: switching dwa -> mfl" in lines[0]
    assert "alpha=0.01" in lines[0] and "temperature=2.0" in lines[0]


def test_a_switch_that_drops_nothing_says_nothing(caplog):
    dropped: list[str] = []
    merged = deep_merge({"w": {"name": "constant", "alpha": 1}}, {"w": {"name": "rlw", "alpha": 1}}, dropped)
    assert merged == {"w": {"name": "rlw", "alpha": 1}} and dropped == []


def test_set_name_follows_the_same_rule(caplog):
    data = {"weighting": {"name": "dwa", "alpha": 0.01, "beta": 1.0, "temperature": 2.0}}
    with caplog.at_level(logging.WARNING, logger="jasc"):
        apply_sets(data, ["weighting.beta=0.5", "weighting.name=mfl", "weighting.gamma=2"])
    # beta was set by this layer before the switch, gamma after it; alpha and temperature were the old block's.
    assert data == {"weighting": {"name": "mfl", "beta": 0.5, "gamma": 2}}
    lines = warnings_of(caplog)
    assert len(lines) == 1 and "--set: weighting: switching dwa -> mfl" in lines[0]
    assert "alpha=0.01" in lines[0] and "temperature=2.0" in lines[0] and "beta" not in lines[0]


def test_set_mapping_merges_like_an_extends_layer():
    data = {"weighting": {"name": "dwa", "alpha": 0.01, "temperature": 2.0}}
    apply_sets(data, ["weighting={name: dwa, temperature: 1.5}"])
    assert data == {"weighting": {"name": "dwa", "alpha": 0.01, "temperature": 1.5}}
    apply_sets(data, ["weighting={name: rlw, beta: 2}"])
    assert data == {"weighting": {"name": "rlw", "beta": 2}}


def test_switching_a_dwa_recipe_to_mfl_on_the_command_line_validates(caplog):
    """Issue 23: `quickstart_dwa --set weighting.name=mfl` failed with `weighting.temperature: extra field`."""
    with caplog.at_level(logging.WARNING, logger="jasc"):
        recipe = load_recipe(RECIPES / "quickstart_dwa.yaml", ["weighting.name=mfl"])
    assert recipe.weighting.name == "mfl" and recipe.weighting.alpha == 0.001  # MFL's own default
    assert any("temperature=2.0" in line for line in warnings_of(caplog))


QUICKSTART = ["quickstart_dwa", "quickstart_gradnorm", "quickstart_mfl", "quickstart_mfl_dwa", "quickstart_pcgrad",
              "quickstart_rlw", "quickstart_uncertainty"]
CONVENTIONAL = ["tonami_dwa", "tonami_gradnorm", "tonami_mfl", "tonami_mfl_dwa", "tonami_pcgrad", "tonami_rlw",
                "tonami_uncertainty"]


@pytest.mark.parametrize(("name", "alpha"), [(n, 0.01) for n in QUICKSTART] + [(n, 0.001) for n in CONVENTIONAL])
def test_weighting_variants_share_their_base_weights(name, alpha, caplog):
    with caplog.at_level(logging.WARNING, logger="jasc"):
        recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert (recipe.weighting.alpha, recipe.weighting.beta) == (alpha, 1.0)
    assert not warnings_of(caplog)  # nothing of the base's weighting is dropped


def test_validate_print_shows_the_shared_weights(cli):
    code, out, err = cli("validate", str(RECIPES / "quickstart_gradnorm.yaml"), "--print")
    assert code == 0, err
    assert yaml.safe_load(out)["weighting"] == {"name": "gradnorm", "alpha": 0.01, "beta": 1.0, "asymmetry": 1.5,
                                                 "layer": "last", "lr": yaml.safe_load(out)["weighting"]["lr"]}


@pytest.mark.parametrize("base", sorted((RECIPES / "base").glob("*.yaml")), ids=lambda p: p.name)
def test_a_base_recipe_validates_as_a_base(base, cli):
    with pytest.raises(BaseRecipeError) as raised:
        load_recipe(base)
    assert "model" in raised.value.missing
    code, out, err = cli("validate", str(base))
    assert code == 0, err
    assert "is a base recipe" in out and f"extends: {base.name}" in out and "model" in out
    code, out, err = cli("validate", str(base), "--print")
    assert code == 2 and out == "" and "is a base recipe" in err


def test_a_base_with_a_bad_field_is_an_error_not_a_base(tmp_path):
    (tmp_path / "b.yaml").write_text("weighting: {name: constant, alpah: 1}\nschedule: {name: soft}\n")
    with pytest.raises(ConfigError) as raised:
        load_recipe(tmp_path / "b.yaml")
    assert not isinstance(raised.value, BaseRecipeError) and "alpah" in str(raised.value)


def test_real_data_recipes_read_the_data_home_and_require_it():
    for path in sorted(RECIPES.rglob("*.yaml")):
        assert "/path/to" not in path.read_text(), path
    for name in ("cpmobile_asc_real", "desed_crnn_sed_real", "desed_crnn_sed_mean_teacher_real", "mt003_soft_real"):
        data = load_recipe(RECIPES / f"{name}.yaml").data
        assert data.require_real, name
        roots = [data.tau.root, data.desed.root] if data.name == "disjoint" else [data.root]
        assert roots == [None] * len(roots), name
