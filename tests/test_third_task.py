"""A third task registered by a plugin (clip-level multi-label tagging with its own head) is trained, predicted
(``jasc predict``, the Python API, ``--onnx``) and exported without any change to the inference code: windows,
outputs, export and ONNX prediction ask the task description, not the task's name."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from predict_runs import trained_fake_run
from pydantic import BaseModel

import jasc
from jasc_core import TASK_DESCRIPTIONS, Clip, ClipList, Head, TaskDescription, hookimpl
from jasc_core.cli import main

RATE = 8000


class TagTask(TaskDescription):
    """Which event classes occur in a clip (audio tagging): multi-hot targets from its events or weak labels."""

    name = "tag"
    frame_level = False
    output_kind = "multilabel"
    validation_metrics = ("micro_f1", "macro_f1")

    def label_kind(self, clip: Clip) -> str | None:
        return "tags" if clip.events is not None or clip.weak is not None else None

    def vocabulary(self, clips: ClipList) -> list[str]:
        return list(clips.event_labels)

    def item_targets(self, clip: Clip, labels: Any, n_frames: int, hop_seconds: float) -> dict[str, torch.Tensor]:
        present = {e.label for e in clip.events or ()} | set(clip.weak or ())
        if self.label_kind(clip) is None:
            return {}
        return {self.name: torch.tensor([float(label in present) for label in labels])}

    def loss(self, outputs: Any, targets: Any) -> torch.Tensor | None:
        if self.name not in targets or self.name not in outputs:
            return None
        return torch.nn.functional.binary_cross_entropy_with_logits(outputs[self.name].float(), targets[self.name])

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def metrics(self, probs: np.ndarray, targets: np.ndarray, labels: Any, threshold: Any) -> dict[str, Any]:
        predicted, truth = probs >= threshold, targets > 0.5
        hits, counted = (predicted & truth).sum(0), predicted.sum(0) + truth.sum(0)
        per_class = 2 * hits / np.maximum(1, counted)
        return {"micro_f1": float(2 * hits.sum() / max(1, counted.sum())), "macro_f1": float(per_class.mean())}


class TagHead(Head):
    """Mean over time and frequency, then a linear layer: one logit per tag."""

    name = "fake_tag"
    tasks = ("tag",)

    class Config(BaseModel):
        pass

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.linear = torch.nn.Linear(self.in_channels * self.in_features, self.n_classes)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.linear(feature_map.amax(2).flatten(1))


@hookimpl
def jasc_register_components(register: Any) -> None:
    register(TagTask)
    register(TagHead)


PLUGIN = types.ModuleType("tagging_plugin")
PLUGIN.jasc_register_components = jasc_register_components
LOGMEL = {"name": "logmel", "sample_rate": RATE, "n_mels": 16, "win_ms": 50, "hop_ms": 50}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """A fakes run with scene, event and tag heads, with the tagging plugin registered while it is used."""
    root = tmp_path_factory.mktemp("tagged")
    heads = {"scene": {"name": "fake_scene"}, "event": {"name": "fake_event"}, "tag": {"name": "fake_tag"}}
    with trained_fake_run(root / "run", [(PLUGIN, "tagging")], **{"model.heads": heads, "data.n_eval": 12, "train.epochs": 10,
                                                                 "features": LOGMEL}) as run_dir:
        yield root, run_dir
    assert "tag" not in TASK_DESCRIPTIONS  # the plugin's task leaves with its registry


@pytest.fixture
def beep_file(tmp_path):
    t = np.arange(round(2.5 * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * 300 * t)
    on = (t > 0.4) & (t < 0.8)
    wave[on] += 0.5 * np.sin(2 * np.pi * 1000 * t[on])
    path = tmp_path / "beep.wav"
    sf.write(path, wave.astype(np.float32), RATE)
    return path


def test_a_registered_task_is_predicted_through_the_cli_and_the_python_api(tagged, beep_file, tmp_path):
    _, run_dir = tagged
    assert TASK_DESCRIPTIONS["tag"].outputs().kind == "multilabel"
    result = jasc.load(run_dir, window_seconds=1.0).predict(beep_file)
    assert set(result["tag_probabilities"]) == {"beep", "buzz"} and "beep" in result["tag"]
    assert result["tag"] == [k for k, p in result["tag_probabilities"].items() if p >= 0.5]
    scores = jasc.load(run_dir, window_seconds=1.0).scores(beep_file)
    assert scores.tag.shape == (2,) and scores.tag_per_window.shape == (len(scores.windows), 2)
    np.testing.assert_allclose(scores.tag, scores.tag_per_window.max(0))  # a tag in any window tags the file
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(run_dir), str(beep_file), "--window", "1", "--out", str(tmp_path / "out")])
    assert exit_info.value.code in (0, None)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"scenes.tsv", "events.tsv", "tag.tsv"}
    rows = (tmp_path / "out" / "tag.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["filename", "tag_labels", "beep", "buzz"] and "beep" in rows[1].split("\t")[1]


def test_a_registered_task_is_exported_and_predicted_with_onnxruntime(tagged, beep_file):
    pytest.importorskip("onnxruntime")
    from jasc_core.inference.onnx_predict import OnnxPredictor

    root, run_dir = tagged
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run_dir), "--window", "1", "--out", str(root / "onnx")])
    assert exit_info.value.code in (0, None)
    report = json.loads((root / "onnx" / "export.json").read_text())
    assert set(report["fp32"]["metrics"]) == {"scene/accuracy", "event/frame_micro_f1", "tag/micro_f1"}
    frontend = json.loads((root / "onnx" / "frontend.json").read_text())
    assert frontend["outputs"]["tag"] == "tag" and [t["task"] for t in frontend["tasks"]] == ["scene", "event", "tag"]
    onnx_result = OnnxPredictor(root / "onnx").predict(beep_file)
    torch_scores = jasc.load(run_dir, window_seconds=1.0).scores(beep_file)
    np.testing.assert_allclose(OnnxPredictor(root / "onnx").scores(beep_file).tag, torch_scores.tag, atol=1e-4)
    assert onnx_result["tag"] == jasc.load(run_dir, window_seconds=1.0).predict(beep_file)["tag"]


def test_inference_code_names_no_task():
    import re
    from pathlib import Path

    import jasc_core.inference as inference

    folder = Path(inference.__file__).parent
    for name in ("windows.py", "outputs.py", "onnx_predict.py", "onnx_files.py", "export.py", "predict.py",
                 "file_predictor.py"):
        text = (folder / name).read_text()
        assert not re.search(r'[=!]=\s*"(scene|event)"|"(scene|event)"\s*(in|==|!=)\b', text), name


def test_a_task_name_that_is_already_known_is_refused():
    from jasc_core import PluginError
    from jasc_core.contract.registry import Registry

    class Clash(TagTask):
        name = "scene"

    plugin = types.ModuleType("clash")
    plugin.jasc_register_components = hookimpl(lambda register: register(Clash))
    with pytest.raises(PluginError, match="task 'scene' is already known"):
        Registry().add_plugin(plugin, "clash")
    assert sys.modules.get("clash") is None
