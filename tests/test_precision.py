"""train.precision: fp32 | bf16 | auto (resolution, the amp alias, fp32 losses and features) and num_workers: auto."""

from __future__ import annotations

import json

import engine_fakes
import pytest
import torch

from jasc_core.data.loaders import worker_count
from jasc_core.errors import ConfigError
from jasc_core.model import device as device_module
from jasc_core.model.device import autocast_for, cpu_flags, resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu sse avx2 avx512f", "fp32"),  # AVX-512 without BF16: bf16 would be emulated
    ("fpu avx512f avx512_bf16", "bf16"),
    ("fpu amx_tile amx_bf16", "bf16"),
    ("", "fp32"),
])
def test_auto_is_bf16_only_where_the_cpu_has_native_bf16(tmp_path, monkeypatch, flags, expected):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert cpu_flags(str(info)) == frozenset(flags.split())
    monkeypatch.setattr(device_module, "cpu_flags", lambda: cpu_flags(str(info)))
    assert resolve_precision("auto", CPU) == expected
    assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"


def test_missing_cpuinfo_means_no_flags_and_unknown_precision_is_an_error(tmp_path):
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()
    with pytest.raises(ConfigError, match="train.precision: 'fp16'"):
        resolve_precision("fp16", CPU)


def test_autocast_bf16_runs_linear_layers_in_bf16_and_fp32_leaves_them():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast_for(CPU, "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with autocast_for(CPU, "fp32"):
        assert layer(x).dtype == torch.float32


def test_amp_is_a_deprecated_alias_of_precision(fakes):
    with pytest.warns(FutureWarning, match="write 'precision: bf16'"):
        recipe = engine_fakes.make_recipe(**{"train.amp": True})
    assert recipe.train.precision == "bf16" and "amp" not in recipe.train.model_dump()
    with pytest.warns(FutureWarning, match="precision: fp32"):
        assert engine_fakes.make_recipe(**{"train.amp": False}).train.precision == "fp32"
    with pytest.raises(ConfigError, match="amp: true contradicts precision: fp32"):
        engine_fakes.make_recipe(**{"train.amp": True, "train.precision": "fp32"})
    with pytest.raises(ConfigError, match="precision"):
        engine_fakes.make_recipe(**{"train.precision": "fp16"})


def test_pipeline_features_stay_fp32_under_autocast(fakes):
    from jasc_core.model.pipeline import Labels, build_pipeline

    recipe = engine_fakes.make_recipe(**{"features": {"name": "logmel", "sample_rate": 8000, "n_mels": 16}})
    pipeline = build_pipeline(recipe, Labels(scene=["a", "b"], event=["x", "y"]), ("scene", "event"))
    with autocast_for(CPU, "bf16"):
        features, outputs = pipeline(torch.randn(2, 8000), with_features=True)
    assert features.dtype == torch.float32
    assert outputs["scene"].dtype == torch.bfloat16  # the model itself runs in bf16


def test_a_bf16_run_computes_losses_in_fp32_and_records_its_precision(fakes, tmp_path, monkeypatch):
    from jasc_core.contract.registry import component
    from jasc_core.training import run_recipe

    seen: set[torch.dtype] = set()
    constant = component("weighting", "constant")
    original = constant.task_losses

    def spy(self, outputs, targets):
        seen.update(t.dtype for t in outputs.values())
        return original(self, outputs, targets)

    monkeypatch.setattr(constant, "task_losses", spy)
    recipe = engine_fakes.make_recipe(**{"train.precision": "bf16", "evaluate.plots": False,
                                         "features": {"name": "logmel", "sample_rate": 8000, "n_mels": 16}})
    run_dir = run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / "run")
    assert seen == {torch.float32}  # training steps and validation alike
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["precision"] == "bf16" and meta["compile"] == "off"
    history = json.loads((run_dir / "history.json").read_text())
    assert all(torch.isfinite(torch.tensor(list(r["train_losses"].values()))).all() for r in history)


@pytest.mark.parametrize(("cores", "expected"), [(1, 0), (2, 1), (3, 2), (16, 4)])
def test_num_workers_auto(fakes, monkeypatch, cores, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert worker_count("auto") == expected
    assert worker_count(3) == 3
    assert engine_fakes.make_recipe(**{"train.num_workers": "auto"}).train.num_workers == "auto"
    with pytest.raises(ConfigError, match="num_workers"):
        engine_fakes.make_recipe(**{"train.num_workers": "many"})


def test_channels_last_trains_in_nhwc_and_checkpoints_load_into_a_plain_model(fakes, tmp_path, monkeypatch):
    from jasc_core import training
    from jasc_core.inference.scoring import load_trained

    layouts = []
    original = training.Trainer.train_step

    def record(self, step_input, epoch):
        def hook(module, inputs, output):  # [B, 8, T, F]: the two layouts differ (a 1-channel weight would not tell)
            layouts.append(output.is_contiguous(memory_format=torch.channels_last) and not output.is_contiguous())

        handle = self.model.encoder.conv.register_forward_hook(hook)
        try:
            return original(self, step_input, epoch)
        finally:
            handle.remove()

    monkeypatch.setattr(training.Trainer, "train_step", record)
    recipe = engine_fakes.make_recipe(**{"train.channels_last": True, "train.precision": "bf16",
                                         "evaluate.plots": False})
    run_dir = training.run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / "run")
    assert layouts and all(layouts)
    _, pipeline, _ = load_trained(run_dir)
    assert pipeline.model.encoder.conv.weight.is_contiguous()
