"""Engine: a full tiny run, resume, NaN guard, bad inputs, gradient schemes and scheme parameters."""

from __future__ import annotations

import json

import engine_fakes
import pytest
import torch

from jasc_core.errors import ConfigError, DataError, JascError, RunError
from jasc_core.runs.checkpoints import load_checkpoint


def _run(tmp_path, name="run", evaluate=True, **overrides):
    from jasc_core.training import run_recipe

    overrides.setdefault("evaluate.plots", False)
    recipe = engine_fakes.make_recipe(**overrides)
    return run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / name, evaluate=evaluate)


def test_two_epoch_run_writes_the_run_folder(fakes, tmp_path, capsys):
    from jasc_core.runs.folder import open_run

    run_dir = _run(tmp_path, **{"evaluate.plots": True})
    run = open_run(run_dir)
    assert run.read_meta()["status"] == "finished"
    for path in (run.recipe, run.last, run.best, run.history, run.metrics,
                 run.predictions / "eval_events.tsv", run.predictions / "eval_scenes.tsv",
                 run.plots / "learning_curves.png", run.plots / "confusion_eval.png",
                 run.plots / "event_roll_eval.png", run.plots / "weights.png"):
        assert path.is_file(), path
    history = json.loads(run.history.read_text())
    assert [r["epoch"] for r in history] == [1, 2]  # 1-based, as the console prints them (issue 16)
    for record in history:
        assert set(record["train_losses"]) == {"scene", "event"}
        assert record["weights"] == {"scene": 1.0, "event": 1.0}
        assert {"val/score", "val/scene/accuracy", "val/event/frame_micro_f1", "val/loss"} <= set(record["val"])
        assert record["lr"] == pytest.approx(0.01)
    metrics = json.loads(run.metrics.read_text())["eval"]
    assert metrics["scene"]["accuracy"] > 0.5  # two tones: learnable in two epochs
    assert {"frame_micro_f1", "frame_macro_f1", "segment_f1", "collar_f1", "psds1", "psds2"} <= set(metrics["event"])
    header = (run.predictions / "eval_events.tsv").read_text().splitlines()[0]
    assert header.split("\t") == ["filename", "onset", "offset", "event_label"]
    assert "Scene micro-F" in capsys.readouterr().out
    # The best checkpoint loads weights-only and rebuilds the model.
    from jasc_core.evaluation import evaluate_run

    again = evaluate_run(run_dir, split="val", plots=False, psds=False, print_table=False)
    assert again["split"] == "val" and "val" in json.loads(run.metrics.read_text())


def _final(run_dir):
    history = json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())["eval"]
    return [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in history], metrics


def test_resume_after_a_mid_epoch_kill_matches_an_uninterrupted_run(fakes, tmp_path, monkeypatch):
    from jasc_core import training as engine

    overrides = {"train.epochs": 3, "evaluate.plots": False}
    reference = _final(_run(tmp_path, "whole", **overrides))

    original = engine.Trainer.train_step

    def crash_in_epoch_two(self, batch, epoch):
        if epoch == 1 and self.step == self.steps_per_epoch + 1:
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this point runs
        return original(self, batch, epoch)

    monkeypatch.setattr(engine.Trainer, "train_step", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "killed", **overrides)
    killed = tmp_path / "killed"
    assert load_checkpoint(killed / "checkpoints" / "last.pt").epoch == 0
    monkeypatch.setattr(engine.Trainer, "train_step", original)

    recipe = engine_fakes.make_recipe(**overrides)
    engine.run_recipe(recipe, recipe_path="fake.yaml", resume=killed)
    assert _final(killed) == reference


def test_resume_rejects_a_changed_recipe_and_a_folder_that_is_not_a_run(fakes, tmp_path):
    from jasc_core.training import run_recipe

    run_dir = _run(tmp_path, evaluate=False, **{"train.epochs": 1})
    changed = engine_fakes.make_recipe(**{"train.epochs": 1, "weighting.alpha": 0.5})
    with pytest.raises(RunError, match="changed: weighting"):
        run_recipe(changed, recipe_path="fake.yaml", resume=run_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a jasc run folder"):
        run_recipe(changed, recipe_path="fake.yaml", resume=tmp_path / "empty")


def test_nan_loss_stops_with_task_and_step_and_keeps_the_last_checkpoint(fakes, tmp_path):
    # 24 train clips / batch 8 = 3 steps per epoch; 0-based step 4 is the 5th step, 2nd batch of epoch 2.
    with pytest.raises(RunError) as info:
        _run(tmp_path, **{"weighting": {"name": "nan_after", "nan_step": 4}, "train.epochs": 3})
    message = str(info.value)
    assert "non-finite event loss" in message and "step 5 (epoch 2, batch 2)" in message
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint = load_checkpoint(last)
    assert checkpoint.epoch == 0
    assert all(torch.isfinite(v).all() for v in checkpoint.model.values() if v.is_floating_point())
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"model.heads.scene": {"name": "fake_scene_5"}}, ConfigError, r"outputs 5 classes, expected 2 \(the data has 2 scene labels\)"),
        ({"model.heads.event.n_classes": 3}, ConfigError, "n_classes is 3 but the data has 2"),
        ({"data.n_val": 0}, DataError, "split 'val' is empty"),
        ({"train.select_metric": "val/nope"}, ConfigError, "select_metric"),
        ({"data.unlabelled_scene_every": 1}, ConfigError, "has no scene labels in split 'train'"),
    ],
)
def test_bad_inputs_stop_before_training(fakes, tmp_path, overrides, error, match):
    with pytest.raises(error, match=match):
        _run(tmp_path, evaluate=False, **overrides)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert not last.exists()


def test_out_must_be_a_new_or_empty_folder(fakes, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(RunError, match="not empty"):
        _run(tmp_path, evaluate=False)


def test_a_model_without_heads_is_rejected(fakes, tmp_path):
    with pytest.raises(JascError, match="at least one head"):
        _run(tmp_path, evaluate=False, **{"model.heads": {}})


def test_gradient_scheme_gets_per_task_gradients_of_the_shared_parameters(fakes, tmp_path):
    engine_fakes.GradientMean.seen.clear()
    _run(tmp_path, evaluate=False, **{"weighting": {"name": "grad_mean"}, "train.epochs": 1})
    seen = engine_fakes.GradientMean.seen
    assert len(seen) == 3  # one call per step
    encoder_shapes = [(8, 1, 3, 3), (8,)]
    for call in seen:
        assert call["tasks"] == ["event", "scene"]
        assert call["shapes"] == encoder_shapes and call["n_shared"] == 2
        # The two tasks pull the encoder differently: real per-task gradients, not copies of one.
        assert not torch.allclose(call["grads"]["scene"][0], call["grads"]["event"][0])


def test_scheme_parameters_train_and_epoch_losses_reach_on_epoch_end(fakes, tmp_path):
    run_dir = _run(tmp_path, evaluate=False, **{"weighting": {"name": "learned_scale"}, "train.epochs": 2,
                                                "train.optimizer.weight_decay": 0.1})
    history = json.loads((run_dir / "history.json").read_text())
    weights = [r["weights"] for r in history]
    assert weights[0]["scene"] != 1.0 and weights[1]["scene"] != weights[0]["scene"]
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    groups = checkpoint.training.optimizer["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert len(groups[1]["params"]) == 2
    assert set(history[0]["train_losses"]) == {"scene", "event"}


def test_clips_without_scene_labels_train_the_scene_task_on_the_others(fakes, tmp_path):
    run_dir = _run(tmp_path, evaluate=True, **{"data.unlabelled_scene_every": 2, "train.epochs": 1})
    metrics = json.loads((run_dir / "metrics.json").read_text())["eval"]
    assert metrics["scene"]["n_clips"] == 4  # every other eval clip has no scene label
    assert metrics["n_clips"] == 8


def test_single_task_model_and_cosine_warmup_schedule(fakes, tmp_path):
    run_dir = _run(
        tmp_path, evaluate=False,
        **{"model.heads.scene": None, "train.epochs": 2, "train.lr_schedule": {"name": "cosine", "warmup_epochs": 1},
           "train.optimizer.name": "radam", "train.grad_clip": 1.0, "train.select_metric": "val/loss",
           "train.select_mode": "min"},
    )
    history = json.loads((run_dir / "history.json").read_text())
    assert set(history[0]["train_losses"]) == {"event"}
    assert history[0]["lr"] == pytest.approx(0.01)  # end of warmup: peak
    assert history[1]["lr"] == pytest.approx(0.0, abs=1e-9)  # end of cosine: min_lr 0
    assert "val/scene/accuracy" not in history[0]["val"]


def test_early_stopping(fakes, tmp_path):
    # lr 0 never improves after the first epoch's score: stops after 1 + patience epochs.
    run_dir = _run(tmp_path, evaluate=False, **{"train.epochs": 6, "train.early_stopping": 2,
                                                "train.optimizer.lr": 1e-12})
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 3


def test_run_stopped_before_training_leaves_no_folder(fakes, tmp_path):
    """A bad recipe caught at start-up leaves nothing behind, so the same command works once it is fixed."""
    with pytest.raises(ConfigError, match="n_classes is 3"):
        _run(tmp_path, "stopped", **{"model.heads.event.n_classes": 3})
    assert not (tmp_path / "stopped").exists()
    assert (_run(tmp_path, "stopped", evaluate=False) / "checkpoints" / "last.pt").is_file()


def test_a_stand_in_dataset_is_named_wherever_the_run_names_its_data(fakes, tmp_path, capsys):
    """A dataset serving substitute data (Dataset.stand_in) marks run.json, metrics, the printed and saved tables."""
    phrase = "synthetic stand-in of fake_data (no data at /nowhere)"
    run_dir = _run(tmp_path, **{"data": {"name": "fake_data", "stand_in": phrase}, "train.epochs": 1,
                                "evaluate.plots": True})
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == [
        "confusion_eval.png", "event_roll_eval.png", "learning_curves.png", "weights.png"]
    assert json.loads((run_dir / "run.json").read_text())["data_stand_in"] == phrase
    assert json.loads((run_dir / "metrics.json").read_text())["eval"]["data_stand_in"] == phrase
    tables = (run_dir / "tables_eval.md").read_text()
    assert "| Method | Scene micro-F | Scene macro-F | Event micro-F | Event macro-F |" in tables
    assert phrase in tables and "not a reproduction" in " ".join(capsys.readouterr().out.split())


def test_a_real_dataset_run_says_nothing_about_a_stand_in(fakes, tmp_path):
    run_dir = _run(tmp_path, **{"train.epochs": 1})
    assert "data_stand_in" not in json.loads((run_dir / "run.json").read_text())
    assert "stand-in" not in (run_dir / "tables_eval.md").read_text()
