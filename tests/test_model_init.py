"""``model.init``: fine-tuning from another run loads what matches and reports what it skipped."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import engine_fakes
import pytest

from jasc_core import ClipList, Event, hookimpl
from jasc_core.errors import ConfigError


class ThreeEventData(engine_fakes.FakeData):
    """The fake clips with a third event class (``click``): same scenes, a wider event head."""

    name = "fake_data_3events"

    def load(self, split):
        clips = super().load(split)
        changed = [replace(clip, events=(*clip.events, Event(0.1, 0.2, "click"))) if index % 3 == 0 else clip
                   for index, clip in enumerate(clips)]
        return ClipList(changed, scene_labels=clips.scene_labels, event_labels=["beep", "buzz", "click"])


@hookimpl
def jasc_register_components(register):
    register(ThreeEventData)


@pytest.fixture
def fakes(jasc_registry):
    jasc_registry.add_plugin(engine_fakes, "engine_fakes")
    jasc_registry.add_plugin(sys.modules[__name__], "three_events")
    return jasc_registry


def _run(tmp_path, name, **overrides):
    from jasc_core.training import run_recipe

    recipe = engine_fakes.make_recipe(**{"evaluate.plots": False, "train.epochs": 1, **overrides})
    return run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / name, evaluate=False)


def test_init_from_a_run_with_other_event_classes_loads_the_encoder_and_skips_the_event_head(fakes, tmp_path, capsys):
    source = _run(tmp_path, "source")
    capsys.readouterr()
    tuned = _run(tmp_path, "tuned", **{"data.name": "fake_data_3events", "model.init": {"run": str(source)}})
    out = capsys.readouterr().out
    init = json.loads((tuned / "run.json").read_text())["init"]
    assert init["source"] == str(source / "checkpoints" / "best.pt")
    assert init["parts"]["encoder"]["status"] == "loaded" and init["parts"]["encoder"]["loaded"] > 0
    assert init["parts"]["heads.scene"]["status"] == "loaded"
    event = init["parts"]["heads.event"]
    assert event["status"] == "skipped" and event["loaded"] == 0
    assert "label list differs" in event["skipped"]["linear.weight"]
    assert "heads.event: skipped" in out and "encoder: loaded" in out


def test_shape_mismatch_is_reported_and_strict_makes_it_an_error(fakes, tmp_path):
    import torch

    from jasc_core.runs.checkpoints import load_checkpoint

    source = _run(tmp_path, "source")
    # A bare checkpoint without label lists: only the shapes can tell the event heads apart.
    state = load_checkpoint(source / "checkpoints" / "best.pt")
    torch.save({"model": state.model}, tmp_path / "bare.pt")
    tuned = _run(tmp_path, "tuned", **{"data.name": "fake_data_3events",
                                       "model.init": {"checkpoint": str(tmp_path / "bare.pt"),
                                                      "parts": ["encoder", "heads.event"]}})
    init = json.loads((tuned / "run.json").read_text())["init"]
    assert init["random"] == ["heads.scene"]
    assert init["parts"]["heads.event"]["skipped"]["linear.weight"].startswith("shape mismatch: [2, ")
    with pytest.raises(ConfigError, match=r"model.init: heads.event.linear.weight: shape mismatch.*strict: true"):
        _run(tmp_path, "strict", **{"data.name": "fake_data_3events",
                                    "model.init": {"checkpoint": str(tmp_path / "bare.pt"), "strict": True}})
    assert not (tmp_path / "strict").exists()


def test_init_block_is_checked(fakes, tmp_path):
    with pytest.raises(ConfigError, match="exactly one of run"):
        engine_fakes.make_recipe(**{"model.init": {"parts": ["encoder"]}})
    with pytest.raises(ConfigError, match=r"model.init.checkpoint: .*missing.pt does not exist"):
        _run(tmp_path, "bad", **{"model.init": {"checkpoint": str(tmp_path / "missing.pt")}})
    source = _run(tmp_path, "source")
    with pytest.raises(ConfigError, match=r"model.init.parts: no part 'heads.sceen' in this model; parts: encoder, "):
        _run(tmp_path, "bad", **{"model.init": {"run": str(source), "parts": ["heads.sceen"]}})


def test_a_resume_keeps_its_checkpoint_and_needs_no_source(fakes, tmp_path, monkeypatch):
    import shutil

    from jasc_core import training as engine
    from jasc_core.runs.checkpoints import load_checkpoint

    source = _run(tmp_path, "source")
    overrides = {"evaluate.plots": False, "train.epochs": 2, "data.name": "fake_data_3events",
                 "model.init": {"run": str(source)}}
    original = engine.Trainer.train_step

    def crash_in_epoch_two(self, batch, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, batch, epoch)

    monkeypatch.setattr(engine.Trainer, "train_step", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "tuned", **overrides)
    monkeypatch.setattr(engine.Trainer, "train_step", original)
    tuned = tmp_path / "tuned"
    assert load_checkpoint(tuned / "checkpoints" / "last.pt").epoch == 0
    # A resume restores last.pt; re-applying init would need the source (gone now) and be overwritten anyway.
    shutil.rmtree(source)
    engine.run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", resume=tuned)
    meta = json.loads((tuned / "run.json").read_text())
    assert meta["status"] == "finished" and meta["epochs_trained"] == 2
    assert meta["init"]["source"] == str(source / "checkpoints" / "best.pt")  # where the weights came from
