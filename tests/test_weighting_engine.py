"""The weighting schemes inside the real training engine (slow): histories are finite and DWA's recorded weights
follow its formula applied to the recorded epoch losses."""

from __future__ import annotations

import json
import math

import pytest

RECIPE = """
seed: 0
data: {{name: synthetic, preset: tut-joint, minutes: 2, sample_rate: 16000, cache_dir: "{cache}"}}
features: {{name: logmel, sample_rate: 16000, n_mels: 32}}
model:
  encoder: {{name: tonami_cnn, channels: [8, 8, 8], freq_pools: [4, 2, 2]}}
  heads:
    scene: {{name: tonami_scene, channels: [16, 16], fc_units: 8}}
    event: {{name: bigru, hidden_size: 8, fc_units: 8}}
weighting: {weighting}
schedule: {{name: soft}}
train: {{epochs: 4, batch_size: 8, optimizer: {{name: radam, lr: 0.003}}}}
evaluate: {{split: eval, threshold: 0.5}}
output: {{dir: "{runs}"}}
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synthetic-cache")


def train_history(tmp_path, cache_dir, weighting: str) -> list[dict]:
    from jasc_core.recipes.model import load_recipe
    from jasc_core.training import run_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(cache=cache_dir, runs=tmp_path / "runs", weighting=weighting))
    root = run_recipe(load_recipe(path), recipe_path=path, out_dir=tmp_path / "run", evaluate=False)
    history = json.loads((root / "history.json").read_text())
    for record in history:
        for value in [*record["train_losses"].values(), *record["weights"].values()]:
            assert math.isfinite(value)
    return history


@pytest.mark.slow
def test_dwa_history_follows_the_formula(tmp_path, cache_dir):
    history = train_history(tmp_path, cache_dir, "{name: dwa, alpha: 0.5, beta: 1.0, temperature: 2.0}")
    assert len(history) == 4
    for t, record in enumerate(history):
        # The weights recorded for epoch t are those epoch t trained with: 1 for the first two epochs, then
        # lambda_k(t) = K exp(w_k / T) / sum_i exp(w_i / T), w_k = L_k(t-1) / L_k(t-2), times the base weight.
        if t < 2:
            expected = {"scene": 1.0, "event": 1.0}
        else:
            w = {k: history[t - 1]["train_losses"][k] / history[t - 2]["train_losses"][k] for k in ("scene", "event")}
            z = sum(math.exp(v / 2.0) for v in w.values())
            expected = {k: 2 * math.exp(v / 2.0) / z for k, v in w.items()}
        assert record["weights"]["scene"] == pytest.approx(0.5 * expected["scene"], abs=1e-5)
        assert record["weights"]["event"] == pytest.approx(expected["event"], abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["{name: mfl, reduction: mean}", "{name: gradnorm}", "{name: pcgrad}"])
def test_scheme_trains_in_the_engine(tmp_path, cache_dir, weighting):
    history = train_history(tmp_path, cache_dir, weighting)
    assert len(history) == 4
    assert set(history[-1]["weights"]) >= {"scene", "event"}
