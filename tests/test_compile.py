"""train.compile: in-place torch.compile with every weighting kind, every schedule, resume and export; the fallback.

The runs compile for real (inductor, about 20 s each on one CPU thread), hence ``slow``; the fallback and the
in-place property are fast.
"""

from __future__ import annotations

import json
import os

import engine_fakes
import pytest
import torch

from jasc_core import training
from jasc_core.runs.checkpoints import load_checkpoint
from jasc_core.training import compile as compile_module
from jasc_core.training.compile import compile_models, compile_unavailable, is_compiled

DISJOINT = {"data": {"name": "fake_disjoint"}}
EVENT_ONLY = {"model.heads": {"event": {"name": "fake_event_clip"}}, "train.select_metric": "val/event/frame_micro_f1"}


def _run(tmp_path, name="run", **overrides):
    torch._dynamo.reset()  # counts (and compiles) this run's graphs from scratch
    recipe = engine_fakes.make_recipe(**{"evaluate.plots": False, "train.compile": True, **overrides})
    return training.run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / name)


def _history(run_dir):
    history = json.loads((run_dir / "history.json").read_text())
    return [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in history]


def _checked(run_dir, extra_models=()):
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["compile"] == "on"
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # compiled, not silently eager
    for name in ("last.pt", "best.pt"):
        checkpoint = load_checkpoint(run_dir / "checkpoints" / name)
        keys = list(checkpoint.model) + [k for m in checkpoint.extra_models.values() for k in m]
        assert keys and not [k for k in keys if "_orig_mod" in k]
        assert set(checkpoint.extra_models) == set(extra_models)
    history = _history(run_dir)
    assert all(torch.isfinite(torch.tensor(list(r["train_losses"].values()))).all() for r in history)
    return history


def test_compiling_in_place_keeps_the_module_and_its_state_dict_keys():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    keys = list(model.state_dict())
    assert compile_models([model], False, torch.device("cpu")) == "off" and not is_compiled(model)
    if compile_unavailable(torch.device("cpu")) is None:
        assert compile_models([model], True, torch.device("cpu")) == "on" and is_compiled(model)
    assert list(model.state_dict()) == keys


def test_without_a_compiler_the_run_falls_back_to_eager_and_says_why(fakes, tmp_path, monkeypatch):
    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    assert "C++ compiler" in compile_unavailable(torch.device("cpu"))
    run_dir = _run(tmp_path, **{"train.epochs": 1})
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["compile"].startswith("eager: inductor needs a C++ compiler")


def test_a_run_leaves_the_process_wide_compiler_and_cublas_settings_as_it_found_them(fakes, tmp_path, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(compile_module, "compile_unavailable", lambda device: "no compiler in this test")
    before = (torch._dynamo.config.suppress_errors, torch._functorch.config.donated_buffer)
    seen = {}
    original = compile_module.compile_models

    def spy(models, enabled, device):
        seen["during"] = (torch._dynamo.config.suppress_errors, torch._functorch.config.donated_buffer)
        return original(models, enabled, device)

    monkeypatch.setattr(training.loop, "compile_models", spy)
    _run(tmp_path, **{"train.epochs": 1, "train.compile": True, "train.deterministic": True})
    assert seen["during"] == (True, False)  # what a compiled run needs, while it runs
    assert (torch._dynamo.config.suppress_errors, torch._functorch.config.donated_buffer) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


@pytest.mark.slow
@pytest.mark.parametrize("weighting", [{"name": "constant"}, {"name": "pcgrad"}, {"name": "gradnorm"}])
def test_compiled_runs_with_each_kind_of_weighting_match_eager_closely(fakes, tmp_path, weighting):
    """Per-task gradients (PCGrad, GradNorm) take several autograd.grad calls through the compiled graph."""
    overrides = {"weighting": weighting, "model.encoder.dropout": 0.0}
    compiled = _checked(_run(tmp_path, "compiled", **overrides))
    eager = _history(_run(tmp_path, "eager", **{**overrides, "train.compile": False}))
    for a, b in zip(compiled, eager, strict=True):
        for task in a["train_losses"]:
            assert a["train_losses"][task] == pytest.approx(b["train_losses"][task], rel=1e-3, abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", [
    {"name": "hard", "ratio": {"scene": 1, "event": 2}},
    {"name": "freeze", "order": ["event", "scene"], "first_epochs": 1},
])
def test_compiled_runs_with_hard_and_freeze_schedules(fakes, tmp_path, schedule):
    history = _checked(_run(tmp_path, **{**DISJOINT, "train.epochs": 3, "schedule": schedule,
                                         "model.encoder.batch_norm": True}))
    assert len(history) == 3


@pytest.mark.slow
def test_compiled_mean_teacher_run_in_bf16(fakes, tmp_path):
    run_dir = _run(tmp_path, **{**DISJOINT, **EVENT_ONLY, "train.epochs": 2, "train.precision": "bf16",
                                "schedule": {"name": "mean_teacher", "rampup_epochs": 1, "decay": 0.9}})
    history = _checked(run_dir, extra_models=("teacher",))
    assert all(set(r["extra_losses"]) == {"consistency_frame", "consistency_clip"} for r in history)
    assert json.loads((run_dir / "run.json").read_text())["precision"] == "bf16"


@pytest.mark.slow
def test_compiled_cross_run_resumes_like_an_uninterrupted_one(fakes, tmp_path, monkeypatch):
    overrides = {**DISJOINT, "train.epochs": 3, "train.compile": True, "evaluate.plots": False,
                 "schedule": {"name": "hard", "cross": {"weight": 1.0}}}
    whole = _run(tmp_path, "whole", **overrides)
    _checked(whole, extra_models=("teacher",))
    killed = engine_fakes.interrupted_run(monkeypatch, tmp_path / "killed", overrides, epoch=2)
    engine_fakes.resumed(killed, overrides)
    assert _history(killed) == _history(whole)


@pytest.mark.slow
def test_a_compiled_run_exports_to_onnx(fakes, tmp_path):
    pytest.importorskip("onnxruntime")
    from jasc_core.cli import main

    run_dir = _run(tmp_path, **{"train.epochs": 2, "features": {"name": "logmel", "sample_rate": 8000, "n_mels": 16,
                                                                "win_ms": 50, "hop_ms": 50}})
    _checked(run_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run_dir), "--format", "onnx", "--window", "1", "--out", str(tmp_path / "onnx")])
    assert exit_info.value.code in (0, None)
    report = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert report["round_trip"]["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_the_tonami_scene_head_compiled_under_bf16_has_finite_gradients():
    """Inductor's backward of ``torch.amax`` after batch norm under bf16 autocast gave NaN gradients (the quickstart
    with precision bf16 + compile stopped at step 2); the head's global max-pool must not go through it."""
    from jasc_tonami.network import TonamiScene

    torch.manual_seed(0)
    for pool in ("time_frequency", "time"):
        head = TonamiScene(TonamiScene.Config(channels=[32], time_pools=[1], global_pool=pool), n_classes=4,
                           in_channels=32, in_features=2)
        head.compile()
        x = torch.randn(8, 32, 250, 2).to(torch.bfloat16).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            head(x).float().mean().backward()
        assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in head.parameters()), pool
