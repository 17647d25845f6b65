"""A run killed with SIGKILL in the middle of an epoch resumes to exactly the metrics of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import engine_fakes
import pytest
import torch

from jasc_core.runs.checkpoints import load_checkpoint

HERE = Path(__file__).parent

CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
import engine_fakes
from jasc_core import training as engine
from jasc_core.contract.registry import Registry, reset_registry
registry = Registry(); registry.load_entry_points(); registry.add_plugin(engine_fakes, "engine_fakes")
reset_registry(registry)
step = engine.Trainer.train_step
def slow_step(self, batch, epoch):
    time.sleep(0.3)  # leaves time to kill it mid-epoch
    return step(self, batch, epoch)
engine.Trainer.train_step = slow_step
recipe = engine_fakes.make_recipe(**{overrides!r})
engine.run_recipe(recipe, recipe_path="fake.yaml", out_dir={out!r})
"""

BASE = {"train.epochs": 3, "evaluate.plots": False}
DISJOINT = {**BASE, "data": {"name": "fake_disjoint"}, "model.encoder.batch_norm": True}
CASES = {
    # (overrides, the epoch whose checkpoint must exist before the kill)
    "soft": (BASE, 0),
    # FreezeMTL: killed inside phase 2 (epochs 1-2), after its first epoch's checkpoint.
    "freeze": ({**DISJOINT, "schedule": {"name": "freeze", "order": ["event", "scene"], "first_epochs": 1}}, 1),
    "hard": ({**DISJOINT, "schedule": {"name": "hard"}}, 0),
    # EMA teachers: CrossHardMTL, and the mean teacher on strong, weak and unlabelled streams (event-only model).
    "cross_hard": ({**DISJOINT, "schedule": {"name": "hard", "cross": True}}, 0),
    "mean_teacher": ({**DISJOINT, "model.heads": {"event": {"name": "fake_event_clip"}},
                      "train.select_metric": "val/event/frame_micro_f1",
                      "schedule": {"name": "mean_teacher", "rampup_epochs": 2, "decay": 0.9},
                      "train.stream_batch_sizes": {"strong": 3, "weak": 2, "unlabelled@2s": 4}}, 0),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(jasc_registry, tmp_path, case):
    from jasc_core.training import run_recipe

    overrides, after_epoch = CASES[case]
    jasc_registry.add_plugin(engine_fakes, "engine_fakes")
    whole = run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", out_dir=tmp_path / "whole")

    killed = tmp_path / "killed"
    code = CHILD.format(tests=str(HERE), overrides=overrides, out=str(killed))
    child = subprocess.Popen([sys.executable, "-c", code], env=os.environ | {"PYTHONUNBUFFERED": "1"})
    last = killed / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while engine_fakes.checkpoint_epoch(last) < after_epoch and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    time.sleep(0.45)  # one or two steps into the next epoch (steps of 0.3 s each)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert load_checkpoint(last).epoch == after_epoch

    run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", resume=killed)

    assert engine_fakes.final_results(killed) == engine_fakes.final_results(whole)
    teachers = [load_checkpoint(run / "checkpoints" / "last.pt").extra_models for run in (killed, whole)]
    assert teachers[0].keys() == teachers[1].keys()
    for name, state in teachers[0].items():  # the teacher too ends as if never interrupted
        assert all(torch.equal(state[key], teachers[1][name][key]) for key in state), name
