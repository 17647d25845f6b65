"""Per-class median filter lengths tuned on validation, stored in the run, and used by later evaluations."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from jasc_core.contract.data import Clip, Event
from jasc_core.evaluation import median_tuning
from jasc_core.inference.scoring import SplitScores
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.runs import median_filters

HOP = 0.1


def _split():
    """Two classes over 3 clips of 10 s: 'long' events of 6 s that the model detects with a flicker every third frame
    (a median filter joins them), and 'blip' events of 0.2 s detected exactly (a long filter erases them)."""
    clips, probs = [], []
    for i in range(3):
        frames = np.full((100, 2), 0.1)
        frames[20:80, 0] = 0.9
        frames[20:80:3, 0] = 0.1
        frames[10 + i:12 + i, 1] = 0.9
        clips.append(Clip(f"c{i}", "mem", 0.0, 10.0, events=(Event(2.0, 8.0, "long"),
                                                             Event((10 + i) * HOP, (12 + i) * HOP, "blip"))))
        probs.append(frames)
    scores = SplitScores(clip_ids=[c.clip_id for c in clips], hop_seconds=HOP, durations=[10.0] * 3,
                         probs={"event": np.stack(probs)}, targets={"event": np.zeros((3, 100, 2))},
                         labelled={"event": np.ones(3, bool)})
    recipe = SimpleNamespace(evaluate=SimpleNamespace(threshold=0.5, postprocess=PostprocessConfig()))
    return scores, (recipe, None, {"event": ["long", "blip"]}, clips)


def test_each_class_gets_the_length_that_maximises_its_own_f1(monkeypatch):
    saved = {}
    monkeypatch.setattr(median_tuning, "score_split", lambda run_dir, split: _split())
    monkeypatch.setattr(median_tuning, "stored_thresholds", lambda run_dir, labels: None)
    monkeypatch.setattr(median_tuning, "save_median_filters", lambda run_dir, lengths, **info: saved.update(lengths))
    lengths = median_tuning.tune_median_filters("run", "val", grid=(0.0, 0.2, 1.5))
    assert lengths["long"] == 0.2  # the flicker (one frame in three) needs 3 frames (0.2 s rounds up to 3)
    assert lengths["blip"] == 0.0  # no filter helps a 2-frame event; ties keep the shortest
    assert saved == lengths


def test_stored_lengths_replace_the_recipes_median_filter(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"recipe_hash": "x"}))
    (run / "recipe.yaml").write_text("{}\n")
    base = PostprocessConfig(median_filter=0.45, merge_gap=0.1)
    assert median_filters.run_postprocess(run, ["a", "b"], base) is base  # nothing tuned yet
    median_filters.save_median_filters(run, {"a": 0.2, "b": 0.0}, split="val")
    tuned = median_filters.run_postprocess(run, ["a", "b"], base)
    assert tuned.median_filter == {"a": 0.2, "b": 0.0} and tuned.merge_gap == 0.1
    with pytest.raises(Exception, match="tuned for labels"):
        median_filters.run_postprocess(run, ["a", "c"], base)
