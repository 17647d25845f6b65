"""The jasc_cpmobile recipes: challenge budgets through `jasc profile`, and each recipe trains on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_budget_dcase_t1_passes_the_baseline(cli):
    code, out, _ = cli("profile", str(RECIPES / "cpmobile_asc.yaml"), "--budget", "dcase-t1", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["input"]["shape"] == [1, 65, 256]
    assert report["total"]["params"] == 61_148 and report["total"]["macs_dcase"] == 29_419_156
    assert report["total"]["memory_bytes"] == {"fp32": 244_592, "fp16": 122_296, "int8": 61_148}
    assert report["budget"] == {"name": "dcase-t1", "limits": report["budget"]["limits"], "over": [], "within": True}


def test_budget_dcase_t1_fails_the_mt_model_naming_what_is_over(cli):
    code, out, _ = cli("profile", str(RECIPES / "mt003_soft.yaml"), "--budget", "dcase-t1")
    assert code == 1
    text = " ".join(out.split())
    assert "OVER: parameter memory 1,273,264 bytes at fp16 (636,632 parameters) is over 128,000 bytes" in text
    assert "MACs 43,291,984 per 1-s clip (DCASE convention) are over 30,000,000" in text


def test_budget_dcase_t4_reports_without_limits(cli):
    code, out, _ = cli("profile", str(RECIPES / "desed_crnn_sed.yaml"), "--budget", "dcase-t4", "--json")
    report = json.loads(out)
    assert code == 0 and report["input"]["seconds"] == 10.0
    assert report["total"]["params"] == 1_112_420
    assert "no official limit" in report["budget"]["limits"]


def test_unknown_budget_and_conflicting_seconds_are_config_errors(cli):
    code, _, err = cli("profile", str(RECIPES / "cpmobile_asc.yaml"), "--budget", "dcase-t9")
    assert code == 2 and "no budget 'dcase-t9'; budgets: dcase-t1, dcase-t4" in err
    code, _, err = cli("profile", str(RECIPES / "cpmobile_asc.yaml"), "--budget", "dcase-t1", "--seconds", "10")
    assert code == 2 and "stated for 1-s clips" in err


# -- training on tiny synthetic data ---------------------------------------------------------------------------------

# Each recipe shrunk to seconds of CPU: one minute of audio (the least that gives strong event labels; FreezeMTL
# selects on event F1, so it needs event clips in the validation split too: 4 minutes), two epochs,
# narrow layers.
TINY = {
    "cpmobile_asc.yaml": ["model.encoder.base_channels=8", "model.encoder.n_blocks=[1,1,1]",
                          "model.encoder.strides={b2: [2, 1]}"],
    # n_blocks [1, 1, 2]: the recipe's strides name block 4, and a --set mapping merges into strides like extends does.
    "cpmobile_2023_asc.yaml": ["model.encoder.base_channels=8", "model.encoder.n_blocks=[1,1,2]",
                               "model.encoder.strides={b2: [2, 2]}"],
    "desed_crnn_sed.yaml": ["model.encoder.channels=[4,4,4,4,4,4,8]", "model.heads.event.hidden_size=8"],
    "cpmobile_rnn_sed.yaml": ["model.encoder.base_channels=8", "model.heads.event.hidden_size=8"],
    "mt003_cnn_asc.yaml": ["model.encoder.channels=[4,4,4,4,4,4,8]"],
    "mt003_crnn_sed.yaml": ["model.encoder.channels=[4,4,4,4,4,4,8]", "model.heads.event.hidden_size=8"],
    "mt003_soft.yaml": ["model.encoder.channels=[4,4,4,4,4,4,8]", "model.heads.event.hidden_size=8"],
    "mt003_hard.yaml": ["model.encoder.channels=[4,4,4,4,4,4,8]", "model.heads.event.hidden_size=8"],
    "mt003_freeze_sed_asc.yaml": ["data.minutes=4", "model.encoder.channels=[4,4,4,4,4,4,8]", "model.heads.event.hidden_size=8"],
    "mt003_freeze_asc_sed.yaml": ["data.minutes=4", "model.encoder.channels=[4,4,4,4,4,4,8]", "model.heads.event.hidden_size=8"],
}


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synthetic-cache")


@pytest.mark.parametrize("recipe", sorted(TINY))
def test_recipe_trains_two_epochs_on_tiny_synthetic_data(recipe, cli, data_cache, tmp_path):
    sets = [f"data.cache_dir={data_cache}", "data.minutes=1", "train.epochs=2", "train.batch_size=4",
            f"output.dir={tmp_path}", "output.name=run", "evaluate.plots=false", *TINY[recipe]]
    code, out, err = cli("run", str(RECIPES / recipe), *[arg for s in sets for arg in ("--set", s)])
    assert code == 0, err
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    tasks = {task for entry in history for task in entry["train_losses"]}
    heads = set(json.loads(json.dumps(_heads(tmp_path / "run" / "recipe.yaml"))))
    assert tasks == heads  # every head of the recipe got a training loss
    assert all(loss == loss for entry in history for loss in entry["train_losses"].values())  # no NaN
    assert "eval" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def _heads(resolved: Path) -> list[str]:
    import yaml

    heads = yaml.safe_load(resolved.read_text())["model"]["heads"]
    return [task for task, block in heads.items() if block]
