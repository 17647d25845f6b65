"""The training core as 003's schedules use it: data streams on disjoint data, phases (FreezeMTL), one task per step
(HardMTL), weak labels on a head's clip output, and resume inside a phase."""

from __future__ import annotations

import json

import engine_fakes
import pytest
import torch

from jasc_core import training
from jasc_core.contract.tasks import default_task_losses, labelled_subset
from jasc_core.data.clips import ClipDataset
from jasc_core.data.loaders import collate

DISJOINT = {"data": {"name": "fake_disjoint"}, "evaluate.plots": False}


def _run(tmp_path, name="run", **overrides):
    recipe = engine_fakes.make_recipe(**{**DISJOINT, **overrides})
    return training.run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / name)


def _recording(monkeypatch, steps):
    """Wrap ``Trainer.train_step`` to record each step's batches, tasks, LR and trainer."""
    original = training.Trainer.train_step

    def record(self, step_input, epoch):
        batches, tasks = step_input
        steps.append({"epoch": epoch, "phase": self.phase.name, "tasks": tasks, "trainer": self,
                      "lr": self.optimizer.param_groups[0]["lr"],
                      "batches": [(b.waveform.shape, sorted(b.targets)) for b in batches]})
        return original(self, step_input, epoch)

    monkeypatch.setattr(training.Trainer, "train_step", record)


def _history(run_dir):
    history = json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())["eval"]
    return [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in history], metrics


def test_disjoint_batches_have_one_clip_length_and_each_stream_its_batch_size(fakes, tmp_path, monkeypatch):
    steps = []
    _recording(monkeypatch, steps)
    _run(tmp_path, **{"train.epochs": 1, "train.stream_batch_sizes": {"scene": 6, "strong": 3, "weak": 2}})
    streams = {name: reader.info for name, reader in steps[0]["trainer"].parts.streams.items()}
    assert {name: (info.clip_seconds, info.n_clips, info.batch_size) for name, info in streams.items()} == {
        "scene": (1.0, 20, 6), "strong": (2.0, 12, 3), "weak": (2.0, 8, 2), "unlabelled": (2.0, 8, 8)}
    # SoftMTL on disjoint data: per step one batch of 1-s scene clips and one of 2-s event clips (strong + weak
    # joined: same length), never padded to each other; the epoch is one pass over the longest stream (strong: 4).
    assert len(steps) == 4
    for step in steps:
        (scene_shape, scene_targets), (event_shape, event_targets) = step["batches"]
        assert scene_shape == (6, 8000) if step is not steps[-1] else scene_shape[1] == 8000
        assert scene_targets == ["scene"]
        assert event_shape == (3 + 2, 16000) and event_targets == ["event", "event/clip"]


def test_weak_labels_reach_the_clip_output_loss(fakes):
    from jasc_core.model.pipeline import build_model

    data = engine_fakes.FakeDisjoint({"n_scene": 0, "n_strong": 0, "n_weak": 4, "n_unlabelled": 0})
    clips = data.load("train")
    features = engine_fakes.FakeFeatures()
    dataset = ClipDataset(clips, data, sample_rate=8000, hop_seconds=features.hop_seconds,
                          n_frames_for=features.num_frames, labels={"event": ["beep", "buzz"]})
    batch = collate([dataset[i] for i in range(4)])
    assert sorted(batch.targets) == ["event/clip"] and batch.targets["event/clip"].shape == (4, 2)
    for head in ("fake_event_clip", "fake_event"):  # its own attention-pooled clip output; max over frames
        model = build_model({"encoder": {"name": "fake_conv"}, "heads": {"event": {"name": head}}}, 8, {"event": 2})
        outputs = model(features(batch.waveform))
        outs, targets = labelled_subset(outputs, batch, ["event"])
        loss = default_task_losses(outs, targets)["event"]
        clip = outputs["event/clip"] if head == "fake_event_clip" else outputs["event"].amax(1)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(clip, batch.targets["event/clip"])
        assert torch.allclose(loss, expected)
        loss.backward()
        if head == "fake_event_clip":
            assert model.heads["event"].attention.weight.grad.abs().sum() > 0


def test_freeze_phases_train_one_task_each_on_its_own_streams(fakes, tmp_path, monkeypatch):
    steps = []
    _recording(monkeypatch, steps)
    run_dir = _run(tmp_path, **{"train.epochs": 4, "model.encoder.batch_norm": True,
                                "schedule": {"name": "freeze", "order": ["event", "scene"], "first_epochs": 2}})
    phase_two = [s for s in steps if s["phase"] == "scene"]
    assert {s["phase"] for s in steps} == {"event", "scene"} and phase_two
    assert all(s["tasks"] == ("event",) for s in steps if s["phase"] == "event")
    # Phase 1 reads event streams only (strong + weak, 2-s clips); phase 2 scene clips only.
    assert all(shape[1] == 16000 for s in steps if s["phase"] == "event" for shape, _ in s["batches"])
    assert all(len(s["batches"]) == 1 and s["batches"][0][0][1] == 8000 and s["tasks"] == ("scene",)
               for s in phase_two)
    history = json.loads((run_dir / "history.json").read_text())
    assert [r["phase"] for r in history] == ["event", "event", "scene", "scene"]


def test_freeze_phase_two_changes_neither_encoder_parameters_nor_batch_norm_statistics(fakes, tmp_path, monkeypatch):
    snapshots = {}
    original = training.Trainer.enter_phase

    def snapshot(self, index, resuming):
        original(self, index, resuming)
        if index == 1:
            snapshots["encoder"] = {k: v.clone() for k, v in self.model.encoder.state_dict().items()}
            snapshots.update({f"model.heads.scene.{k}": v.clone() for k, v in self.model.heads["scene"].state_dict().items()})

    monkeypatch.setattr(training.Trainer, "enter_phase", snapshot)
    run_dir = _run(tmp_path, **{"train.epochs": 3, "model.encoder.batch_norm": True,
                                "schedule": {"name": "freeze", "order": ["event", "scene"], "first_epochs": 1}})
    final = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert "norm.running_mean" in snapshots["encoder"]
    for key, value in snapshots["encoder"].items():
        assert torch.equal(final[f"model.encoder.{key}"], value), key
    moved = [k for k, v in final.items() if k.startswith("model.heads.scene.") and not torch.equal(v, snapshots[k])]
    assert moved  # the scene head did train


def test_hard_alternates_at_the_ratio_and_the_lr_moves_every_step(fakes, tmp_path, monkeypatch):
    steps = []
    _recording(monkeypatch, steps)
    _run(tmp_path, **{"train.epochs": 2, "schedule": {"name": "hard", "ratio": {"scene": 1, "event": 2}},
                      "train.lr_schedule": {"name": "cosine"}})
    assert [s["tasks"] for s in steps[:6]] == [("scene",), ("event",), ("event",)] * 2
    for step in steps:
        assert len(step["batches"]) == 1
        shape, targets = step["batches"][0]
        assert shape[1] == (8000 if step["tasks"] == ("scene",) else 16000)
    # Epoch = one pass over each task's streams: scene 20/8 -> 3, strong 12/8 -> 2, weak 8/8 -> 1 batches.
    assert len(steps) == 2 * 6
    lrs = [s["lr"] for s in steps]
    assert all(later < earlier for earlier, later in zip(lrs, lrs[1:], strict=False))


@pytest.mark.parametrize("schedule", [
    {"name": "freeze", "order": ["event", "scene"], "first_epochs": 1},
    {"name": "hard", "ratio": {"scene": 1, "event": 1}},
])
def test_resume_inside_a_phase_matches_an_uninterrupted_run(fakes, tmp_path, monkeypatch, schedule):
    overrides = {"train.epochs": 3, "schedule": schedule, "model.encoder.batch_norm": True}
    reference = _history(_run(tmp_path, "whole", **overrides))
    killed = engine_fakes.interrupted_run(monkeypatch, tmp_path / "killed", {**DISJOINT, **overrides}, epoch=2)
    engine_fakes.resumed(killed, {**DISJOINT, **overrides})
    assert _history(killed) == reference


def test_extra_losses_and_models_are_recorded_saved_resumed_and_evaluated_by_name(fakes, tmp_path, monkeypatch):
    from jasc_core.evaluation import evaluate_run
    from jasc_core.runs.checkpoints import load_checkpoint

    overrides = {"data": {"name": "fake_data"}, "schedule": {"name": "fake_teacher"}, "train.epochs": 3}
    whole = _run(tmp_path, "whole", **overrides)
    history = json.loads((whole / "history.json").read_text())
    assert all(record["extra_losses"]["consistency"] > 0 for record in history)
    best = load_checkpoint(whole / "checkpoints" / "best.pt")
    assert set(best.extra_models) == {"teacher"}
    teacher = evaluate_run(whole, split="eval", model="teacher", print_table=False)
    student = json.loads((whole / "metrics.json").read_text())["eval"]
    assert teacher["model"] == "teacher" and "eval_teacher" in json.loads((whole / "metrics.json").read_text())
    assert set(teacher) >= {"scene", "event"} and student["model"] == "student"
    from jasc_core.inference.scoring import load_trained

    _, student_net, _ = load_trained(whole)
    _, teacher_net, _ = load_trained(whole, model="teacher")
    weight = "model.encoder.conv.weight"
    assert torch.equal(teacher_net.state_dict()[weight], best.extra_models["teacher"]["encoder.conv.weight"])
    assert not torch.equal(teacher_net.state_dict()[weight], student_net.state_dict()[weight])
    with pytest.raises(Exception, match="no model 'nobody'"):
        evaluate_run(whole, split="eval", model="nobody")

    killed = engine_fakes.interrupted_run(monkeypatch, tmp_path / "killed", {**DISJOINT, **overrides}, epoch=2)
    engine_fakes.resumed(killed, {**DISJOINT, **overrides})
    assert _history(killed) == _history(whole)
    resumed = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt").extra_models["teacher"]
    uninterrupted = load_checkpoint(whole / "checkpoints" / "last.pt").extra_models["teacher"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_stream_batch_sizes_name_streams_or_their_label_kind_and_reject_others(fakes, tmp_path, monkeypatch):
    steps = []
    _recording(monkeypatch, steps)
    _run(tmp_path, "kind", **{"train.epochs": 1, "train.stream_batch_sizes": {"strong": 4}})
    infos = {name: reader.info.batch_size for name, reader in steps[0]["trainer"].parts.streams.items()}
    assert infos == {"scene": 8, "strong": 4, "unlabelled": 8, "weak": 8}
    from jasc_core.errors import ConfigError

    # A name that is neither a stream nor a label kind of one (a typo, or a length this split does not have).
    for wrong in ("strongg", "scene@1s"):
        with pytest.raises(ConfigError, match=f"no stream '{wrong}' in this training split; streams: scene, strong"):
            _run(tmp_path, wrong, **{"train.epochs": 1, "train.stream_batch_sizes": {wrong: 4}})


def test_train_streams_keeps_only_the_named_streams_and_their_clip_order(fakes, tmp_path, monkeypatch):
    """``train.streams: [strong]`` trains on strong clips alone (the supervised-only baseline of a mean teacher); the
    kept stream reads the clips it reads in a run that keeps every stream."""
    steps, every = [], []
    _recording(monkeypatch, steps)
    _run(tmp_path, "all", **{"train.epochs": 1, "model.heads.scene": None})
    every, steps[:] = list(steps), []
    _run(tmp_path, "strong", **{"train.epochs": 1, "model.heads.scene": None, "train.streams": ["strong"]})
    assert list(steps[0]["trainer"].parts.streams) == ["strong"]
    seed = steps[0]["trainer"].parts.streams["strong"].generator.initial_seed()
    assert seed == every[0]["trainer"].parts.streams["strong"].generator.initial_seed()
    assert all(batch[1] == ["event"] for step in steps for batch in step["batches"])  # no weak clip-level target
    from jasc_core.errors import ConfigError

    with pytest.raises(ConfigError, match="train.streams: no stream 'strongg' in this training split"):
        _run(tmp_path, "typo", **{"train.epochs": 1, "train.streams": ["strongg"]})


def test_validate_dry_runs_a_head_with_its_own_clip_output(cli):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "desed_crnn_sed.yaml"
    code, out, err = cli("validate", str(recipe))
    assert code == 0, err
    assert "model.heads.event/clip [1, 10]" in " ".join(out.split())


@pytest.mark.parametrize(("schedule", "epochs", "expected"), [
    # train.steps_per_epoch fixes every epoch at 5 steps whatever the streams' lengths: SoftMTL trains both tasks
    # on every step; FreezeMTL over twice the epochs gives each task as many steps as SoftMTL; HardMTL 1:1 halves.
    ({"name": "soft"}, 2, {"total": 10, "tasks": {"event": 10, "scene": 10}}),
    ({"name": "freeze", "order": ["event", "scene"], "first_epochs": 2}, 4,
     {"total": 20, "tasks": {"event": 10, "scene": 10},
      "phases": {"event": {"steps": 10, "tasks": {"event": 10}}, "scene": {"steps": 10, "tasks": {"scene": 10}}}}),
    ({"name": "hard", "ratio": {"scene": 1, "event": 1}}, 2, {"total": 10, "tasks": {"event": 5, "scene": 5}}),
])
def test_steps_per_epoch_matches_steps_across_schedules_and_run_json_counts_them(fakes, tmp_path, schedule, epochs,
                                                                                 expected):
    from jasc_core.training.step_counts import steps_line

    run_dir = _run(tmp_path, **{"train.epochs": epochs, "train.steps_per_epoch": 5, "schedule": schedule})
    steps = json.loads((run_dir / "run.json").read_text())["steps"]
    assert {k: v for k, v in steps.items() if k in expected} == expected
    line = steps_line(steps)  # printed at the end of training
    assert line.startswith(f"optimiser steps: {expected['total']} (event {expected['tasks']['event']}, scene ")
    assert ("by phase: event 10 (event 10); scene 10 (scene 10)" in line) == (schedule["name"] == "freeze")


def test_mean_teacher_rampup_counts_the_fixed_steps_per_epoch(fakes):
    from jasc_core.contract.context import SetupContext, StreamInfo
    from jasc_schedules.mean_teacher import MeanTeacher

    streams = {"strong": StreamInfo("strong", frozenset({"event"}), 2.0, 12, 4)}
    schedule = MeanTeacher(MeanTeacher.Config(rampup_epochs=2))
    for fixed, rampup in ((None, 2 * 3), (50, 2 * 50)):
        context = SetupContext(epochs=4, tasks=("event",), streams=streams, device=torch.device("cpu"), seed=0,
                               steps_per_epoch=fixed)
        schedule.setup(torch.nn.Linear(1, 1), context)  # the EMA teacher copies any module
        assert schedule._rampup_steps == rampup
