"""Device-specific models: train.devices, jasc finetune-devices, and choosing a device's model for prediction."""

from __future__ import annotations

import dataclasses
import json
import sys

import engine_fakes
import pytest

import jasc
from jasc_core import ClipList, hookimpl, training
from jasc_core.errors import ConfigError, RunError
from jasc_core.inference.device_models import run_for_device
from jasc_core.runs.folder import create_run
from jasc_core.training.device_models import finetune_devices


class DeviceFakeData(engine_fakes.FakeData):
    """engine_fakes' clips recorded by devices a and b; the eval split also by c (unseen in training)."""

    name = "fake_devices"

    def load(self, split: str) -> ClipList:
        clips = super().load(split)
        devices = ("a", "b", "c") if split == "eval" else ("a", "b")
        return dataclasses.replace(clips, clips=[dataclasses.replace(c, device=devices[i % len(devices)])
                                                 for i, c in enumerate(clips)])


@hookimpl
def jasc_register_components(register) -> None:
    register(DeviceFakeData)


@pytest.fixture
def device_fakes(fakes):
    fakes.add_plugin(sys.modules[__name__], "device_fakes")
    return fakes


def test_an_unknown_device_gets_the_general_model(tmp_path):
    run = create_run(tmp_path / "run", recipe_yaml="seed: 0\n", identity={"seed": 0}, version="t")
    assert run_for_device(run.root, "a") == run.root  # no device models at all
    (run.root / "devices" / "a").mkdir(parents=True)
    (run.root / "device_models.json").write_text(json.dumps({"devices": {"a": "devices/a"}}))
    assert run_for_device(run.root, "a") == run.root / "devices" / "a"
    assert run_for_device(run.root, "s9") == run.root
    assert run_for_device(run.root, None) == run.root
    (run.root / "device_models.json").write_text(json.dumps({"devices": {"b": "devices/b"}}))
    with pytest.raises(RunError, match="lists device models that are not there"):
        run_for_device(run.root, "b")


def test_train_devices_naming_no_training_device_is_a_recipe_error(device_fakes):
    recipe = engine_fakes.make_recipe(**{"data": {"name": "fake_devices"}, "train.devices": ["zz"]})
    with pytest.raises(ConfigError, match=r"train.devices: no training clip .* zz \(devices there: a, b\)"):
        training.build_parts(recipe)
    parts = training.build_parts(engine_fakes.make_recipe(**{"data": {"name": "fake_devices"},
                                                              "train.devices": ["a"]}))
    assert parts.labels["scene"] == ["high", "low"]  # the vocabulary stays the general model's


@pytest.mark.slow
def test_finetune_devices_keeps_the_general_model_for_unseen_devices(device_fakes, tmp_path):
    recipe = engine_fakes.make_recipe(**{"data": {"name": "fake_devices"}, "evaluate.plots": False})
    run = training.run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / "general")
    listing = finetune_devices(run, epochs=1)
    assert listing["devices"] == {"a": "devices/a", "b": "devices/b"}
    assert listing["accuracy"]["c"]["seen"] is False
    assert listing["accuracy"]["c"]["device_model"] == listing["accuracy"]["c"]["general"]
    assert {"a", "b"} <= set(listing["accuracy"]) and listing["accuracy"]["a"]["seen"]
    assert json.loads((run / "device_models.json").read_text())["devices"] == listing["devices"]
    import numpy as np
    import torch

    general, device_a = jasc.load(run), jasc.load(run, recording_device="a")
    unseen = jasc.load(run, recording_device="c")
    weights = [next(iter(p.pipeline.model.parameters())) for p in (general, device_a, unseen)]
    assert not torch.equal(weights[0], weights[1]) and torch.equal(weights[0], weights[2])
    assert device_a.predict(np.zeros(8000, dtype=np.float32), sample_rate=8000)["scene"] in ("high", "low")
    assert run_for_device(run, "a") == run / "devices" / "a" and run_for_device(run, "c") == run
