"""Loggers on the run hooks: TensorBoard and MLflow hold a 2-epoch run's metrics; a failing logger is switched off."""

from __future__ import annotations

import json
import types

import engine_fakes
import pytest
from pydantic import Field

from jasc_core import Logger, hookimpl
from jasc_core.contract.registry import Registry
from jasc_core.errors import ConfigError
from jasc_core.training.hooks import RunHooks


def _run(tmp_path, log, **overrides):
    from jasc_core.training import run_recipe

    overrides.setdefault("evaluate.plots", False)
    recipe = engine_fakes.make_recipe(log=log, **overrides)
    return run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / "run")


def test_tensorboard_event_file_holds_the_epoch_metrics(fakes, tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run_dir = _run(tmp_path, ["tensorboard"], **{"evaluate.plots": True})
    history = json.loads((run_dir / "history.json").read_text())
    events = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("train/loss/scene", "train/loss/event", "weight/scene", "lr", "val/score", "val/scene/accuracy"):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2], tag
    assert [s.value for s in events.Scalars("val/score")] == pytest.approx([r["val"]["val/score"] for r in history])
    assert [s.value for s in events.Scalars("train/loss/event")] == pytest.approx(
        [r["train_losses"]["event"] for r in history])
    final = json.loads((run_dir / "metrics.json").read_text())["eval"]
    assert events.Scalars("final/scene/accuracy")[0].value == pytest.approx(final["scene"]["accuracy"])
    assert "plots/learning_curves" in tags["images"]


def test_mlflow_run_holds_params_epoch_metrics_and_the_run_folder(fakes, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    run_dir = _run(tmp_path, [{"name": "mlflow", "experiment": "dcase"}])
    history = json.loads((run_dir / "history.json").read_text())
    run_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{(run_dir / 'mlruns' / 'mlflow.db').resolve()}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "dcase"  # the entry's option reached MLflow
    assert run.data.params["train.epochs"] == "2" and run.data.params["model.encoder.name"] == "fake_conv"
    scores = sorted(client.get_metric_history(run_id, "val/score"), key=lambda m: m.step)
    assert [m.step for m in scores] == [1, 2]
    assert [m.value for m in scores] == pytest.approx([r["val"]["val/score"] for r in history])
    assert [m.step for m in client.get_metric_history(run_id, "train/loss/scene")] == [1, 2]
    assert "final/scene/accuracy" in run.data.metrics
    artifacts = {item.path for item in client.list_artifacts(run_id)}
    assert {"history.json", "run.json", "recipe.yaml", "checkpoints"} <= artifacts
    assert "mlruns" not in artifacts


def test_a_logger_that_raises_is_switched_off_and_training_goes_on(fakes, tmp_path, capsys):
    calls = []

    def jasc_epoch_end(run_dir, epoch, metrics):
        calls.append(epoch)
        raise OSError("disk full")

    broken = types.ModuleType("broken_logger")
    broken.jasc_epoch_end = hookimpl(jasc_epoch_end)
    broken.jasc_run_end = hookimpl(lambda run_dir, metrics: calls.append("end"))
    fakes.add_plugin(broken, "broken_logger")
    run_dir = _run(tmp_path, [])
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["epochs_trained"] == 2
    assert calls == [1]  # called once (epoch 1), then neither the next epoch's hook nor the run end
    assert "broken_logger" in meta["hook_failures"] and "disk full" in meta["hook_failures"]["broken_logger"]
    err = capsys.readouterr().err
    assert err.count("plugin 'broken_logger' failed in jasc_epoch_end (OSError: disk full)") == 1


def test_run_hooks_go_through_pluggy_so_ordering_and_wrappers_apply():
    relay = Registry()
    order = []

    @hookimpl(tryfirst=True)
    def first(run_dir, epoch, metrics):
        order.append("tryfirst")

    @hookimpl(wrapper=True)
    def around(run_dir, epoch, metrics):
        order.append("wrapper before")
        result = yield
        order.append("wrapper after")
        return result

    @hookimpl
    def failing(run_dir, epoch, metrics):
        raise ValueError("boom")

    for name, function in (("a_first", first), ("b_wrapper", around), ("c_failing", failing)):
        module = types.ModuleType(name)
        module.jasc_epoch_end = function
        relay.add_plugin(module, name)
    warnings = []
    hooks = RunHooks(relay.hook, warn=warnings.append)
    hooks.jasc_epoch_end(run_dir="r", epoch=1, metrics={})
    hooks.jasc_epoch_end(run_dir="r", epoch=2, metrics={})
    assert order == ["wrapper before", "tryfirst", "wrapper after"] * 2
    assert list(hooks.failed) == ["c_failing"] and len(warnings) == 1  # switched off after its first failure


def test_log_names_are_checked_when_the_recipe_loads(fakes, monkeypatch):
    with pytest.raises(ConfigError, match=r"log\[0\].name: no logger 'tensorbord'; installed: mlflow, tensorboard; "
                                          r"did you mean 'tensorboard'"):
        engine_fakes.make_recipe(log=["tensorboard", "tensorbord"][1:])
    with pytest.raises(ConfigError, match=r"log\[1\].name: 'mlflow' is listed twice"):
        engine_fakes.make_recipe(log=["mlflow", {"name": "mlflow", "dir": "x"}])
    # A logger whose optional dependency is missing is rejected at load time, naming the extra to install.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match=r"log\[0\]: the tensorboard logger needs .* pip install 'jasc\[tensorboard\]'"):
        engine_fakes.make_recipe(log=["tensorboard"])


def test_mlflow_metric_names_lose_what_mlflow_rejects():
    from jasc_loggers.mlflow_logger import metric_name

    # TUT event labels such as "(object) banging" reach per-class metric names; MLflow refuses the parentheses.
    assert metric_name("final/event/frame_per_class_f1/(object) banging") == "final/event/frame_per_class_f1/_object_ banging"
    assert metric_name("val/scene/accuracy") == "val/scene/accuracy"


def test_logger_options_are_validated_like_any_block(fakes):
    with pytest.raises(ConfigError) as caught:
        engine_fakes.make_recipe(log=["tensorbord"])
    assert "\n" not in str(caught.value)  # the name problem alone, not pydantic's union-tag error about it too
    with pytest.raises(ConfigError, match=r"log\.1\.flush_sec: extra field; did you mean 'flush_secs'"):
        engine_fakes.make_recipe(log=["mlflow", {"name": "tensorboard", "flush_sec": 30}])
    with pytest.raises(ConfigError, match=r"log\.0\.flush_secs: .*greater than 0"):
        engine_fakes.make_recipe(log=[{"name": "tensorboard", "flush_secs": 0}])
    with pytest.raises(ConfigError, match=r"log\.0\.experiment: .*at least 1 character"):
        engine_fakes.make_recipe(log=[{"name": "mlflow", "experiment": ""}])


def test_listing_shows_loggers_with_their_plugin(cli):
    code, out, _ = cli("list-plugins", "--kind", "logger", "--json")
    rows = {row["name"]: row for row in json.loads(out)["components"]}
    assert code == 0 and rows["tensorboard"]["plugin"] == "loggers_tensorboard" and rows["mlflow"]["kind"] == "logger"


class Recorder(Logger):
    """Records what the run hooks give it (a third-party logger)."""

    name = "recorder"
    seen: list[tuple[str, object]] = []

    class Config(Logger.Config):
        prefix: str = Field("metric/", description="put before every metric name")


def _recorder_plugin() -> types.ModuleType:
    plugin = types.ModuleType("recorder_plugin")
    plugin.jasc_register_components = hookimpl(lambda register: register(Recorder))

    def jasc_run_start(run_dir, recipe):
        found = Recorder.options(recipe)
        Recorder.seen.append(("start", None if found is None else (found[0], found[1].prefix)))

    def jasc_epoch_end(run_dir, epoch, metrics):
        Recorder.seen.append(("epoch", epoch))

    plugin.jasc_run_start = hookimpl(jasc_run_start)
    plugin.jasc_epoch_end = hookimpl(jasc_epoch_end)
    return plugin


def test_a_third_party_logger_registers_validates_and_follows_the_run(fakes, tmp_path):
    Recorder.seen = []
    fakes.add_plugin(_recorder_plugin(), "recorder_plugin")
    assert fakes.info("logger", "recorder").plugin.name == "recorder_plugin"
    with pytest.raises(ConfigError, match=r"log\.0\.prefx: extra field; did you mean 'prefix'"):
        engine_fakes.make_recipe(log=[{"name": "recorder", "prefx": "x/"}])
    _run(tmp_path, [{"name": "recorder", "prefix": "x/"}])
    assert Recorder.seen == [("start", (0, "x/")), ("epoch", 1), ("epoch", 2)]


def test_a_logger_served_through_jasc_logger_names_still_validates(fakes):
    legacy = types.ModuleType("legacy_logger")
    legacy.jasc_logger_names = hookimpl(lambda: ["legacy"])
    fakes.add_plugin(legacy, "legacy_logger")
    info = fakes.info("logger", "legacy")
    assert info.plugin.name == "legacy_logger" and issubclass(info.cls, Logger)
    assert engine_fakes.make_recipe(log=["legacy"]).log[0].dir is None
    assert engine_fakes.make_recipe(log=[{"name": "legacy", "dir": "d"}]).log[0].dir == "d"
    with pytest.raises(ConfigError, match=r"log\.0\.every: extra field"):
        engine_fakes.make_recipe(log=[{"name": "legacy", "every": 2}])


def test_bare_names_and_name_dir_blocks_are_read_as_logger_blocks(fakes):
    from jasc_core.recipes.model import resolved_dict, validate_recipe

    fakes.add_plugin(_recorder_plugin(), "recorder_plugin")
    recipe = engine_fakes.make_recipe(log=["tensorboard", {"name": "recorder", "dir": "elsewhere"}])
    tensorboard, recorder = recipe.log
    assert (tensorboard.name, tensorboard.dir, tensorboard.flush_secs, tensorboard.max_queue) == (
        "tensorboard", None, 120.0, 10)
    assert (recorder.name, recorder.dir, recorder.prefix) == ("recorder", "elsewhere", "metric/")
    # A run folder's recipe.yaml holds the resolved blocks: they validate again to the same recipe.
    data = resolved_dict(recipe)
    assert data["log"][0] == {"name": "tensorboard", "dir": None, "flush_secs": 120.0, "max_queue": 10}
    assert [e.model_dump() for e in validate_recipe(data).log] == [e.model_dump() for e in recipe.log]
    assert engine_fakes.make_recipe(log=[{"name": "tensorboard", "flush_secs": 30}]).log[0].flush_secs == 30


@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
def test_built_in_loggers_pass_the_conformance_checks(name):
    from jasc_core import component
    from jasc_core.testing import check_component

    check_component(component("logger", name))
