"""Every shipped recipe validates against the installed components (paper rows stay runnable as the code moves)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jasc_core.recipes.model import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_validates(path):
    recipe = load_recipe(path)
    assert recipe.description, f"{path.name}: say what the recipe reproduces in 'description'"


def test_paper_rows_differ_only_where_the_paper_does():
    base = load_recipe(RECIPES[0].parent / "tonami_conventional.yaml")
    mfl = load_recipe(RECIPES[0].parent / "tonami_mfl.yaml")
    assert (mfl.weighting.alpha, mfl.weighting.beta, mfl.weighting.gamma, mfl.weighting.zeta, mfl.weighting.eta) == (
        0.001, 1.0, 1.0, 0.0625, 0.5)
    assert (base.weighting.name, base.weighting.alpha, base.weighting.beta) == ("constant", 0.001, 1.0)
    for block in ("data", "features", "model", "schedule", "train", "evaluate"):
        assert getattr(mfl, block).model_dump() == getattr(base, block).model_dump(), block
