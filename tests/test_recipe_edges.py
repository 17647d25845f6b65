"""Recipe mistakes that used to pass silently or with a vague message (issue 16 items 7 and 10), through `jasc`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_process import run_jasc

from jasc_core.errors import ConfigError
from jasc_core.recipes.files import load_raw, parse_set

ROOT = Path(__file__).resolve().parents[1]


def test_validate_names_file_line_and_key_of_a_duplicate_key(tmp_path):
    recipe = tmp_path / "dup.yaml"
    recipe.write_text("seed: 0\ntrain:\n  epochs: 3\n  batch_size: 8\n  epochs: 5\n")
    result = run_jasc("validate", str(recipe))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{recipe}:" in result.stderr and "line 5" in result.stderr, result.stderr
    assert "duplicate key 'epochs'" in result.stderr and "first given at line 3" in result.stderr


def test_duplicate_key_in_a_base_recipe_names_the_base(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 0\nseed: 1\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\n")
    with pytest.raises(ConfigError, match=r"base\.yaml: invalid YAML at line 2.*duplicate key 'seed'"):
        load_raw(child)


def test_same_key_in_different_mappings_and_yaml_merge_keys_are_fine(tmp_path):
    recipe = tmp_path / "ok.yaml"
    recipe.write_text("a: {name: x}\nb: {name: y}\nbase: &b {lr: 1}\nopt:\n  <<: *b\n  lr: 2\n")
    assert load_raw(recipe)["opt"] == {"lr": 2}


def test_duplicate_key_in_a_set_flow_mapping():
    with pytest.raises(ConfigError, match=r"--set weighting=.*duplicate key 'alpha'"):
        parse_set("weighting={name: constant, alpha: 1, alpha: 2}")


def test_extends_a_folder_names_the_recipe_that_has_the_line(tmp_path):
    (tmp_path / "base").mkdir()
    recipe = tmp_path / "child.yaml"
    recipe.write_text("extends: base\nseed: 1\n")
    result = run_jasc("validate", str(recipe))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{recipe}: extends: 'base' is a folder" in result.stderr, result.stderr


def test_a_hop_longer_than_the_window_is_refused_with_both_values():
    result = run_jasc("validate", "recipes/quickstart.yaml", "--set", "features.hop_ms=50", cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "hop_ms = 50 (800 samples) is larger than win_ms = 40 (640 samples)" in result.stderr, result.stderr
    result = run_jasc("validate", "recipes/quickstart.yaml", "--set", "features.hop_ms=40", cwd=ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("block", "message"), [
    ({"win_samples": 400, "hop_samples": 401}, "hop_samples = 401 is larger than win_samples = 400"),
    ({"sample_rate": 16000, "win_ms": 25, "hop_samples": 401}, "hop_samples = 401 is larger than win_ms = 25 (400"),
])
def test_hop_longer_than_window_in_samples(block, message):
    from jasc_features import LogMel

    with pytest.raises(ConfigError, match=re.escape(message)):
        LogMel(block)
