"""Evaluation of a run folder: predict_scores, tuned thresholds in the run folder, the soft schedule's contract."""

from __future__ import annotations

import json

import engine_fakes
import numpy as np
import pytest

from jasc_core.errors import RunError


@pytest.fixture
def trained(jasc_registry, tmp_path):
    from jasc_core.training import run_recipe

    jasc_registry.add_plugin(engine_fakes, "engine_fakes")
    recipe = engine_fakes.make_recipe(**{"train.epochs": 1, "evaluate.plots": False})
    return run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / "run", evaluate=False)


def test_predict_scores_of_a_split(trained):
    from jasc_core.inference.scoring import predict_scores

    scores, targets, clip_ids, hop = predict_scores(trained, "val")
    assert len(clip_ids) == 8 and hop == pytest.approx(0.05)
    assert scores["scene"].shape == (8, 2) and np.allclose(scores["scene"].sum(1), 1, atol=1e-5)
    assert scores["event"].shape == targets["event"].shape == (8, 20, 2)
    assert set(np.unique(targets["event"])) <= {0.0, 1.0}


def test_tuned_thresholds_are_stored_and_used(trained):
    from jasc_core.evaluation import evaluate_run, tune_thresholds
    from jasc_core.runs.thresholds import save_thresholds

    values = tune_thresholds(trained, {"name": "fixed", "value": 0.3}, split="val")
    assert values.tolist() == [0.3, 0.3]
    stored = json.loads((trained / "thresholds.json").read_text())
    assert stored["labels"] == ["beep", "buzz"] and stored["method"] == "fixed"
    metrics = evaluate_run(trained, split="eval", plots=False, psds=False, print_table=False)
    assert metrics["thresholds_source"] == "thresholds.json" and metrics["threshold"] == [0.3, 0.3]
    with pytest.raises(RunError, match="2 event classes"):
        save_thresholds(trained, np.array([0.1, 0.2, 0.3]), ["beep", "buzz"])


def test_segment_level_thresholds_maximise_the_segment_f1_that_evaluation_reports(trained):
    from jasc_core.errors import ConfigError
    from jasc_core.evaluation import evaluate_run, tune_thresholds

    untuned = evaluate_run(trained, split="val", plots=False, psds=False, print_table=False)["event"]["segment_f1"]
    # The exact search on the segment rows finds the best thresholds for exactly the metric evaluation computes.
    tune_thresholds(trained, {"name": "coordinate"}, split="val", level="segment")
    stored = json.loads((trained / "thresholds.json").read_text())
    assert stored["level"] == "segment" and stored["method"] == "coordinate"
    tuned = evaluate_run(trained, split="val", plots=False, psds=False, print_table=False)["event"]["segment_f1"]
    assert tuned["micro"] >= untuned["micro"]
    with pytest.raises(ConfigError, match="'clip'"):
        tune_thresholds(trained, {"name": "fixed"}, split="val", level="clip")


def test_evaluate_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    from jasc_core.evaluation import evaluate_run

    with pytest.raises(RunError, match="not a run folder"):
        evaluate_run(tmp_path / "nothing")


def test_soft_schedule_conforms_and_trains_every_labelled_task():
    from jasc_core.testing import check_component
    from jasc_schedules import Soft

    soft = check_component(Soft)
    assert soft.tasks_for_step(0, 0, frozenset({"scene"})) == frozenset({"scene"})
    assert soft.tasks_for_step(5, 2, frozenset({"scene", "event"})) == frozenset({"scene", "event"})
