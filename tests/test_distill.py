"""Distillation from an ensemble of finished runs: the recipe block, the teachers' checks, the KL and BCE terms, the
cache (reuse, invalidation), mixup mixing the teachers' targets, and resume."""

from __future__ import annotations

import os

import engine_fakes
import pytest
import torch

from jasc_augment.mixup import Mixup
from jasc_core import Batch, training
from jasc_core.errors import ConfigError
from jasc_core.model.pipeline import Labels, build_pipeline
from jasc_core.recipes.blocks import DistillConfig
from jasc_core.recipes.model import dump_yaml, identity_dict
from jasc_core.runs.checkpoints import load_checkpoint, save_atomic
from jasc_core.runs.folder import create_run
from jasc_core.training.distill import Distiller, teacher_key
from jasc_core.training.run import model_tasks
from jasc_core.training.runtime import Runtime


def _teacher(tmp_path, name, labels=None, **overrides):
    """A finished run's folder without the training: a randomly initialised model saved as its best checkpoint
    (what distillation reads of a teacher: recipe, labels, tasks and weights)."""
    recipe = engine_fakes.make_recipe(**{"evaluate.plots": False, **overrides})
    tasks = model_tasks(recipe)
    labels = Labels(labels or {"scene": ["high", "low"], "event": ["beep", "buzz"]})
    labels = Labels({task: labels[task] for task in tasks})
    torch.manual_seed(len(name))
    pipeline = build_pipeline(recipe, labels, tasks)
    run = create_run(tmp_path / name, recipe_yaml=dump_yaml(recipe), identity=identity_dict(recipe), version="t")
    save_atomic({"model": pipeline.state_dict(), "labels": labels.as_dict(), "tasks": list(tasks)}, run.best)
    return run.root


@pytest.fixture
def teachers(fakes, tmp_path):
    return [str(_teacher(tmp_path, "t1")), str(_teacher(tmp_path, "t2", **{"model.encoder.channels": 12}))]


def _distiller(tmp_path, teachers, tasks=("scene", "event"), **config):
    """A Distiller as build_parts makes it, without preparing data (fast)."""
    block = DistillConfig(**{"teachers": teachers, "temperature": 2.0, "weight": 0.5,
                             "cache_dir": str(tmp_path / "cache"), **config})
    labels = Labels({"scene": ["high", "low"], "event": ["beep", "buzz"]})
    return Distiller(block, labels, tasks, 8000, Runtime("cpu"))


def _student(tmp_path, teachers, name="student", **overrides):
    distill = {"teachers": teachers, "temperature": 2.0, "weight": 0.5, "cache_dir": str(tmp_path / "cache")}
    return engine_fakes.make_recipe(**{"evaluate.plots": False, "distill": distill, **overrides})


def test_the_cache_computes_each_clip_once_and_a_new_distiller_reads_it_back(teachers, tmp_path):
    distiller = _distiller(tmp_path, teachers)
    batch = Batch(waveform=torch.randn(4, 8000), index=torch.arange(4), clip_ids=list("abcd"))
    first = distiller.attach(batch)
    distiller.attach(batch)
    assert distiller.computed == 4
    changed = batch.replace(waveform=batch.waveform.clone())
    changed.waveform[0] += 0.1  # the same clip id with other audio is not served from the cache
    distiller.attach(changed)
    assert distiller.computed == 5
    distiller.save()
    again = _distiller(tmp_path, teachers)
    assert torch.equal(again.attach(batch).targets["scene/teacher"], first.targets["scene/teacher"])
    assert again.computed == 0
    distiller.path.write_bytes(b"truncated")  # an unreadable cache is recomputed, not trusted
    assert _distiller(tmp_path, teachers).cache == {}
    online = _distiller(tmp_path, teachers, outputs="online")
    online.attach(batch)
    online.attach(batch)
    assert online.computed == 8


@pytest.mark.slow
def test_a_distilled_student_records_its_terms_and_reuses_the_cache(teachers, tmp_path, monkeypatch):
    counts = []
    original = Distiller.save

    def record(self):
        counts.append(self.computed)
        original(self)

    monkeypatch.setattr(Distiller, "save", record)
    run = training.run_recipe(_student(tmp_path, teachers), recipe_path="s.yaml", out_dir=tmp_path / "s1")
    history = (run / "history.json").read_text()
    assert '"distill/scene"' in history and '"distill/event"' in history
    # Epoch 1 computes every training clip once (24 clips); epoch 2 reads them all from the cache.
    assert counts == [24, 24]
    cache_files = os.listdir(tmp_path / "cache")
    assert cache_files == [f"{teacher_key(teachers)}.pt"]
    counts.clear()
    training.run_recipe(_student(tmp_path, teachers), recipe_path="s.yaml", out_dir=tmp_path / "s2")
    assert counts == [0, 0]  # a second student with the same teachers computes nothing


def test_a_changed_teacher_checkpoint_changes_the_cache_key(teachers):
    before = teacher_key(teachers)
    best = os.path.join(teachers[0], "checkpoints", "best.pt")
    stat = os.stat(best)
    os.utime(best, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert teacher_key(teachers) != before


def test_a_teacher_without_the_students_task_or_labels_is_a_recipe_error(fakes, tmp_path):
    scene_only = str(_teacher(tmp_path, "scene_only", **{"model.heads.event": None}))
    with pytest.raises(ConfigError, match=r"distill.teachers\[0\] \(.*scene_only\): the teacher has no event head"):
        training.build_parts(_student(tmp_path, [scene_only]))
    # A student without an event head can learn from it.
    assert _distiller(tmp_path, [scene_only], tasks=("scene",)).tasks == ("scene",)
    relabelled = str(_teacher(tmp_path, "relabelled", labels={"scene": ["low", "high"]},
                              **{"model.heads.event": None}))
    with pytest.raises(ConfigError, match=r"relabelled\): its scene labels \['low', 'high'\] differ"):
        _distiller(tmp_path, [relabelled], tasks=("scene",))
    with pytest.raises(ConfigError, match=r"distill.tasks: event is not a task of the student"):
        Distiller(DistillConfig(teachers=[scene_only], tasks=["event"]), Labels({"scene": ["high", "low"]}),
                  ("scene",), 8000, Runtime("cpu"))


def test_the_terms_are_hintons_kl_times_t_squared_and_bce_on_frames(teachers, tmp_path):
    distiller = _distiller(tmp_path, teachers)
    batch = Batch(waveform=torch.randn(3, 8000), index=torch.arange(3), clip_ids=["a", "b", "c"])
    attached = distiller.attach(batch)
    target = attached.targets["scene/teacher"]
    assert torch.allclose(target.sum(-1), torch.ones(3))
    student = {"scene": torch.randn(3, 2), "event": torch.randn(3, 20, 2)}
    terms = distiller.losses(student, attached)
    log_q = torch.log_softmax(student["scene"] / 2.0, -1)
    expected = 0.5 * 4.0 * (target * (target.log() - log_q)).sum(-1).mean()
    assert torch.allclose(terms["distill/scene"], expected, atol=1e-6)
    frames = attached.targets["event/teacher"]
    assert torch.allclose(terms["distill/event"], 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(
        student["event"][:, : frames.shape[1]], frames), atol=1e-6)
    # A student that equals the ensemble has no scene term left.
    ensemble = torch.stack([distiller.cache[k]["scene"] for k in distiller.cache])
    same = distiller.losses({"scene": ensemble}, attached)
    assert float(same["distill/scene"]) == pytest.approx(0.0, abs=1e-6)


def test_mixup_mixes_the_teachers_targets_with_the_labels(teachers, tmp_path):
    distiller = _distiller(tmp_path, teachers)
    batch = Batch(waveform=torch.randn(4, 8000), index=torch.arange(4), clip_ids=list("abcd"),
                  targets={"scene": torch.tensor([0, 1, 0, 1])}, masks={"scene": torch.ones(4, dtype=torch.bool)},
                  n_classes={"scene": 2, "event": 2})
    attached = distiller.attach(batch)
    mixup = Mixup({"alpha": 0.4, "probability": 1.0})
    _, mixed = mixup(torch.randn(4, 20, 8), attached, torch.Generator().manual_seed(0))
    # The same draws as Mixup.forward: the batch choice, Beta(a, a) from two Gamma draws, the partner permutation.
    generator = torch.Generator().manual_seed(0)
    torch.rand((), generator=generator)
    g = torch._standard_gamma(torch.full((2,), 0.4), generator=generator)
    lam, perm = float(g[0] / g.sum()), torch.randperm(4, generator=generator)
    one_hot = torch.nn.functional.one_hot(batch.targets["scene"], 2).float()
    teacher = attached.targets["scene/teacher"]
    assert torch.allclose(mixed.targets["scene"], lam * one_hot + (1 - lam) * one_hot[perm])
    assert torch.allclose(mixed.targets["scene/teacher"], lam * teacher + (1 - lam) * teacher[perm])
    assert not torch.allclose(mixed.targets["scene/teacher"], teacher)


@pytest.mark.slow
def test_resume_of_a_distilled_run_matches_an_uninterrupted_run(teachers, tmp_path, monkeypatch):
    distill = {"teachers": teachers, "temperature": 2.0, "weight": 0.5, "cache_dir": str(tmp_path / "cache")}
    overrides = {"train.epochs": 3, "evaluate.plots": False, "distill": distill}
    whole = training.run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="s.yaml",
                                out_dir=tmp_path / "whole")
    killed = engine_fakes.interrupted_run(monkeypatch, tmp_path / "killed", overrides, epoch=2)
    monkeypatch.undo()
    engine_fakes.resumed(killed, overrides)
    assert engine_fakes.final_results(killed) == engine_fakes.final_results(whole)
    assert load_checkpoint(killed / "checkpoints" / "last.pt").epoch == 2
