"""EMA teacher, mean teacher for SED and CrossMTL (003 Fig. 5c): the update formula, no gradients into the teacher,
the consistency ramp-up, CrossMTL's zero when student and teacher agree, and resume with a teacher."""

from __future__ import annotations

import json
import math

import engine_fakes
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core import Batch, SetupContext, StepContext, StreamInfo, training
from jasc_core.model.pipeline import build_model
from jasc_core.runs.checkpoints import load_checkpoint
from jasc_schedules.cross import CrossConfig, cross_terms
from jasc_schedules.ema import EmaTeacher, ema_decay, exponential_rampup
from jasc_schedules.hard import Hard
from jasc_schedules.mean_teacher import MeanTeacher
from jasc_schedules.soft import Soft

DISJOINT = {"data": {"name": "fake_disjoint"}, "evaluate.plots": False}
EVENT_ONLY = {"model.heads": {"event": {"name": "fake_event_clip"}}, "train.select_metric": "val/event/frame_micro_f1"}
MEAN_TEACHER = {**EVENT_ONLY, "schedule": {"name": "mean_teacher", "rampup_epochs": 2, "decay": 0.9},
                "train.stream_batch_sizes": {"strong": 3, "weak": 2, "unlabelled@2s": 4}}


def _run(tmp_path, name="run", **overrides):
    recipe = engine_fakes.make_recipe(**{**DISJOINT, **overrides})
    return training.run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / name)


def _history(run_dir):
    history = json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())["eval"]
    return [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in history], metrics


def _student() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))


def test_ema_decay_is_desed_formula():
    assert [ema_decay(s, 0.999) for s in (0, 1, 3, 9)] == [0.0, 0.5, 0.75, 0.9]
    assert ema_decay(10_000, 0.999) == 0.999 and ema_decay(50, 0.9) == 0.9


@settings(max_examples=20, deadline=None)
@given(step=st.integers(0, 3000), max_decay=st.floats(0.0, 1.0), mode=st.sampled_from(["train", "eval"]))
def test_ema_update_follows_the_formula_for_parameters_and_buffers(step, max_decay, mode):
    student = _student()
    teacher = EmaTeacher(student, max_decay, mode)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
        student[1].running_mean.add_(2.0)
        student[1].num_batches_tracked.add_(5)
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    decay = teacher.update(student, step)
    assert decay == min(1 - 1 / (step + 1), max_decay)
    after, now = teacher.model.state_dict(), student.state_dict()
    for key, value in after.items():
        if key.endswith("num_batches_tracked"):
            assert torch.equal(value, now[key])
        elif key.endswith(("running_mean", "running_var")) and mode == "train":
            assert torch.equal(value, before[key])  # DESED: the teacher's own forward passes move them
        else:
            assert torch.allclose(value, decay * before[key] + (1 - decay) * now[key], atol=1e-6), key


def test_teacher_parameters_never_require_gradients():
    student = _student()
    teacher = EmaTeacher(student)
    assert all(p.requires_grad for p in student.parameters())
    assert not any(p.requires_grad for p in teacher.model.parameters())
    out = teacher.predict(torch.randn(5, 3), training=True)
    assert not out.requires_grad


def test_exponential_rampup_is_desed_sigmoid_rampup():
    assert exponential_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert exponential_rampup(5, 10) == pytest.approx(math.exp(-5 * 0.25))
    assert exponential_rampup(10, 10) == 1.0 and exponential_rampup(99, 10) == 1.0
    assert exponential_rampup(3, 0) == 1.0


def _setup_context(tasks=("event",)):
    streams = {"strong": StreamInfo("strong", frozenset({"event"}), 2.0, 12, 3),
               "weak": StreamInfo("weak", frozenset({"event"}), 2.0, 8, 2),
               "unlabelled": StreamInfo("unlabelled", frozenset(), 2.0, 8, 4),
               "unlabelled@1s": StreamInfo("unlabelled@1s", frozenset(), 1.0, 20, 5)}
    if "scene" in tasks:
        streams["scene"] = StreamInfo("scene", frozenset({"scene"}), 1.0, 20, 5)
        streams.pop("unlabelled@1s")
    return SetupContext(epochs=6, tasks=tasks, streams=streams, device=torch.device("cpu"), seed=0)


def _model(heads, dropout=0.0):
    return build_model({"encoder": {"name": "fake_conv", "dropout": dropout}, "heads": heads}, 8,
                       {"scene": 2, "event": 2})


def test_mean_teacher_reads_all_three_streams_in_one_batch_and_ramps_its_weight(fakes):
    schedule = MeanTeacher({"max_weight": 2.0, "rampup_epochs": 2})
    schedule.setup(_model({"event": {"name": "fake_event_clip"}}), _setup_context())
    phase = schedule.phases(_setup_context())[0]
    plan = schedule.plan_step(0, 0, phase, _setup_context().streams)
    assert plan.batches == (("strong", "weak", "unlabelled"),)  # not the 1-s unlabelled clips
    per_epoch = 4  # the longest stream: strong, 12 clips in batches of 3 (weak 4, unlabelled 2 batches)
    for step in (0, 1, 4, 7, 8, 50):
        t = min(step / (2 * per_epoch), 1.0)
        assert schedule.weight(step) == pytest.approx(2.0 * math.exp(-5 * (1 - t) ** 2))


def test_mean_teacher_consistency_is_weighted_mse_of_probabilities(fakes):
    model = _model({"event": {"name": "fake_event_clip"}})
    schedule = MeanTeacher({"rampup_epochs": 0, "max_weight": 2.0})
    schedule.setup(model, _setup_context())
    with torch.no_grad():
        for p in schedule.teacher.model.parameters():
            p.add_(0.05)
    features = torch.randn(4, 20, 8)
    outputs = model(features)
    context = StepContext(3, 0, "train", 0, ("event",), model)
    terms = schedule.extra_losses(model, features, outputs, _masks_only({}, 4), context)
    teacher = schedule.teacher.model(features)
    expected_frame = 2.0 * torch.mean((torch.sigmoid(outputs["event"]) - torch.sigmoid(teacher["event"])) ** 2)
    expected_clip = 2.0 * torch.mean((torch.sigmoid(outputs["event/clip"]) - torch.sigmoid(teacher["event/clip"])) ** 2)
    assert torch.allclose(terms["consistency_frame"], expected_frame)
    assert torch.allclose(terms["consistency_clip"], expected_clip)
    terms["consistency_frame"].backward()
    assert all(p.grad is None for p in schedule.teacher.model.parameters())
    assert any(p.grad is not None for p in model.parameters())


def _masks_only(masks, size):
    """A batch of ``size`` silent clips with the given label masks (what the cross and consistency terms read)."""
    return Batch(waveform=torch.zeros(size, 1), index=torch.arange(size), clip_ids=[str(i) for i in range(size)],
                 masks=masks)


def test_cross_true_means_defaults_and_false_means_off():
    assert Soft({"cross": True}).config.cross == CrossConfig()
    assert Hard({"cross": False}).config.cross is None
    assert Soft({"cross": {"weight": 0.3, "rampup_epochs": 4}}).config.cross.weight == 0.3
    assert Soft({}).extra_models() == {}


@pytest.mark.parametrize("schedule_cls", [Soft, Hard])
def test_cross_loss_is_zero_when_student_and_teacher_agree_and_only_on_the_other_tasks_clips(fakes, schedule_cls):
    model = _model({"scene": {"name": "fake_scene"}, "event": {"name": "fake_event"}})
    schedule = schedule_cls({"cross": {"weight": 1.5}})
    schedule.setup(model, _setup_context(("scene", "event")))
    features = torch.randn(4, 20, 8)
    # Clips 0-1 carry scene labels only, 2-3 strong event labels only.
    batch = _masks_only({"scene": torch.tensor([True, True, False, False]),
                         "event": torch.tensor([False, False, True, True])}, 4)
    context = StepContext(0, 0, "train", 0, ("scene", "event"), model)
    terms = schedule.extra_losses(model, features, model(features), batch, context)
    assert set(terms) == {"cross_scene", "cross_event"}
    assert all(float(v.detach()) == 0.0 for v in terms.values())  # the teacher starts as a copy of the student
    with torch.no_grad():
        for p in schedule.teacher.model.heads["scene"].parameters():
            p.add_(0.3)
    outputs = model(features)
    terms = schedule.extra_losses(model, features, outputs, batch, context)
    teacher = schedule.teacher.model(features)
    expected = 1.5 * torch.mean((torch.softmax(outputs["scene"][2:], -1) - torch.softmax(teacher["scene"][2:], -1)) ** 2)
    assert torch.allclose(terms["cross_scene"], expected) and float(terms["cross_scene"].detach()) > 0
    assert float(terms["cross_event"].detach()) == 0.0


def test_cross_terms_skip_a_task_every_clip_is_labelled_for():
    student = {"scene": torch.randn(3, 2)}
    batch = _masks_only({"scene": torch.tensor([True, True, True])}, 3)
    assert cross_terms(student, {"scene": torch.randn(3, 2)}, batch, 1.0) == {}


def test_mean_teacher_run_never_trains_the_teacher_and_resumes_like_an_uninterrupted_run(fakes, tmp_path, monkeypatch):
    seen = {}
    original = training.Trainer.train_step

    def record(self, step_input, epoch):
        result = original(self, step_input, epoch)
        seen["trainer"] = self
        seen["batch"] = max(len(b.clip_ids) for b in step_input[0])
        assert len(step_input[0]) == 1  # one batch joining strong, weak and unlabelled 2-s clips
        teacher = self.schedule.teacher.model
        seen["grads"] = seen.get("grads", 0) + sum(p.grad is not None for p in teacher.parameters())
        optimised = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        seen["in_optimizer"] = seen.get("in_optimizer", 0) + sum(id(p) in optimised for p in teacher.parameters())
        return result

    monkeypatch.setattr(training.Trainer, "train_step", record)
    overrides = {**MEAN_TEACHER, "train.epochs": 3}
    whole = _run(tmp_path, "whole", **overrides)
    assert seen["grads"] == 0 and seen["in_optimizer"] == 0
    # An event-only model sees the 1-s scene clips as unlabelled too: their own stream, which this schedule skips.
    sizes = {name: info.batch_size for name, info in seen["trainer"].infos.items()}
    assert sizes == {"strong": 3, "weak": 2, "unlabelled@2s": 4, "unlabelled@1s": 8}
    assert seen["batch"] == 3 + 2 + 4
    history = json.loads((whole / "history.json").read_text())
    assert all(set(r["extra_losses"]) == {"consistency_frame", "consistency_clip"} for r in history)
    assert set(load_checkpoint(whole / "checkpoints" / "best.pt").extra_models) == {"teacher"}

    monkeypatch.setattr(training.Trainer, "train_step", original)
    killed = engine_fakes.interrupted_run(monkeypatch, tmp_path / "killed", {**DISJOINT, **overrides}, epoch=2)
    engine_fakes.resumed(killed, {**DISJOINT, **overrides})
    assert _history(tmp_path / "killed") == _history(whole)
    resumed = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt").extra_models["teacher"]
    uninterrupted = load_checkpoint(whole / "checkpoints" / "last.pt").extra_models["teacher"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_cross_hard_run_records_both_cross_terms_and_saves_the_teacher(fakes, tmp_path):
    run = _run(tmp_path, **{"train.epochs": 2, "schedule": {"name": "hard", "cross": {"weight": 1.0}}})
    history = json.loads((run / "history.json").read_text())
    assert all(set(r["extra_losses"]) == {"cross_scene", "cross_event"} for r in history)
    assert all(v > 0 for r in history for v in r["extra_losses"].values())
    assert set(load_checkpoint(run / "checkpoints" / "last.pt").extra_models) == {"teacher"}
