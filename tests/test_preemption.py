"""Preemption-safe runs, in this process: stopping signals at step boundaries, mid-epoch checkpoints, run liveness.

The same behaviours with real processes (SIGTERM to a child and to 2 gloo workers, SIGKILL with checkpoint_every)
are in test_preemption_processes.py (slow).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import engine_fakes
import pytest
import torch

from jasc_core.errors import RunError, RunInterrupted
from jasc_core.runs.checkpoints import load_checkpoint
from jasc_core.runs.liveness import host_name, liveness, process_fields
from jasc_core.training.mid_epoch import CheckpointClock, EpochProgress, partial_state, progress_for
from jasc_core.training.signals import Stopped, StopSignals

FAST = {"train.epochs": 2, "evaluate.plots": False}  # 24 clips in batches of 8: 3 steps per epoch


def _signal_at(monkeypatch, signum: int, epoch: int, step: int) -> list[int]:
    """Patch the loop to send ``signum`` to this process during 0-based ``step`` of ``epoch``; returns the list of
    global steps the loop runs (appended as they start)."""
    from jasc_core import training

    original, started = training.Trainer.train_step, []

    def step_and_signal(self, step_input, current):
        started.append(self.step)
        if current == epoch and self.epoch_step == step:
            os.kill(os.getpid(), signum)  # arrives in the middle of this step
        return original(self, step_input, current)

    monkeypatch.setattr(training.Trainer, "train_step", step_and_signal)
    return started


# signals ---------------------------------------------------------------------------------------------------------


def test_handlers_are_installed_for_a_run_and_the_previous_ones_restored():
    def mine(signum, frame):  # noqa: ARG001
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with StopSignals() as stop:
            assert signal.getsignal(signal.SIGTERM) == stop.handle
            assert signal.getsignal(signal.SIGUSR1) == stop.handle
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_signal_outside_training_stops_at_once_and_inside_is_only_recorded():
    stop = StopSignals()
    with pytest.raises(Stopped) as info:
        stop.handle(signal.SIGTERM)
    assert info.value.signum == signal.SIGTERM and info.value.exit_code == 143
    assert isinstance(info.value, KeyboardInterrupt)  # `except Exception` in a caller does not swallow it
    deferred = StopSignals()
    with deferred.deferred():
        deferred.handle(signal.SIGHUP)
    assert deferred.signum == signal.SIGHUP


@pytest.mark.parametrize(("window", "second", "code"), [(0.0, signal.SIGTERM, 143), (0.0, signal.SIGINT, 130),
                                                        (5.0, signal.SIGTERM, None), (5.0, signal.SIGINT, 130)])
def test_a_second_signal_while_stopping_ends_the_process_at_once(monkeypatch, window, second, code):
    """Unless it repeats the first within the duplicate window (torchrun's forwarded copy)."""
    from jasc_core.training import signals

    exits = []
    monkeypatch.setattr(signals.os, "_exit", exits.append)
    stop = StopSignals(duplicate_window=window)
    with stop.deferred():
        stop.handle(signal.SIGTERM)
        stop.handle(second)
    assert exits == ([code] if code else []) and stop.signum == signal.SIGTERM


SECOND = """
import os, signal, time
from jasc_core.training.signals import StopSignals
with StopSignals() as stop, stop.deferred():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    print("still here", flush=True)
"""


@pytest.mark.slow
def test_a_second_signal_ends_a_real_process_with_128_plus_its_number():
    child = subprocess.run([sys.executable, "-c", SECOND], capture_output=True, text=True, timeout=120)
    assert (child.returncode, child.stdout) == (130, ""), child.stderr


def test_the_cli_says_how_to_resume_and_exits_with_128_plus_the_signal(tmp_path, monkeypatch):
    from jasc_core.cli.runs import interrupted_exit

    monkeypatch.delenv("RANK", raising=False)
    error = interrupted_exit(Stopped(signal.SIGTERM, tmp_path))
    assert isinstance(error, RunInterrupted) and error.exit_code == 143
    assert str(error) == f"interrupted by SIGTERM; continue with: jasc run --resume {tmp_path}"
    assert interrupted_exit(KeyboardInterrupt()).exit_code == 130  # a plain Ctrl-C from elsewhere: SIGINT
    monkeypatch.setenv("JASC_NPROC", "2")  # a worker of `jasc run --nproc 2`: its launcher prints the line
    assert interrupted_exit(Stopped(signal.SIGUSR1, tmp_path)).exit_code == 138


# a run stopped by SIGTERM mid-epoch -----------------------------------------------------------------------------


def test_sigterm_mid_epoch_checkpoints_that_step_and_the_resumed_run_equals_an_uninterrupted_one(
        fakes, tmp_path, monkeypatch):
    from jasc_core.training import run_recipe

    whole = run_recipe(engine_fakes.make_recipe(**FAST), recipe_path="fake.yaml", out_dir=tmp_path / "whole")
    before = signal.getsignal(signal.SIGTERM)
    started = _signal_at(monkeypatch, signal.SIGTERM, epoch=1, step=1)
    with pytest.raises(Stopped) as info:
        run_recipe(engine_fakes.make_recipe(**FAST), recipe_path="fake.yaml", out_dir=tmp_path / "stopped")
    stopped = tmp_path / "stopped"
    assert info.value.signum == signal.SIGTERM and info.value.run_dir == stopped
    assert signal.getsignal(signal.SIGTERM) == before  # the caller's handler is back
    meta = json.loads((stopped / "run.json").read_text())
    assert (meta["status"], meta["signal"]) == ("interrupted", "SIGTERM")
    assert (meta["pid"], meta["host"]) == (os.getpid(), host_name())
    checkpoint = load_checkpoint(stopped / "checkpoints" / "last.pt")
    # The step the signal arrived in finished; the checkpoint holds epoch 0 complete and 2 steps of epoch 1.
    assert started[-1] == 4 and checkpoint.step == 5
    assert checkpoint.epoch == 0 and checkpoint.training.partial["steps"] == 2

    monkeypatch.undo()
    resumed_steps = _signal_at(monkeypatch, 0, epoch=-1, step=-1)  # signal 0: only counts the steps
    run_recipe(engine_fakes.make_recipe(**FAST), recipe_path="fake.yaml", resume=stopped)
    assert resumed_steps == [5]  # the last step of epoch 1, nothing repeated
    assert engine_fakes.final_results(stopped) == engine_fakes.final_results(whole)
    assert json.loads((stopped / "run.json").read_text())["status"] == "finished"


def test_checkpoint_every_lets_a_killed_run_repeat_only_the_steps_since_the_last_checkpoint(
        fakes, tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside a step stands in for SIGKILL: nothing after it runs."""
    from jasc_core import training

    overrides = {**FAST, "train.checkpoint_every": 0.5 / 60}  # 0.5 s; each step below takes more than 0.3 s
    whole = training.run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml",
                                out_dir=tmp_path / "whole")
    original, started = training.Trainer.train_step, []

    def slow_then_killed(self, step_input, epoch):
        started.append(self.step)
        if self.step == 5:  # the last step of epoch 1
            raise KeyboardInterrupt
        time.sleep(0.3)
        return original(self, step_input, epoch)

    monkeypatch.setattr(training.Trainer, "train_step", slow_then_killed)
    with pytest.raises(KeyboardInterrupt):
        training.run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", out_dir=tmp_path / "k")
    checkpoint = load_checkpoint(tmp_path / "k" / "checkpoints" / "last.pt")
    assert checkpoint.epoch == 0 and checkpoint.training.partial["steps"] in (1, 2)  # inside epoch 1
    since = [step for step in started[:-1] if step >= checkpoint.step]  # finished after the last checkpoint
    assert len(since) <= 1  # two steps take longer than the interval
    monkeypatch.setattr(training.Trainer, "train_step", original)
    resumed = _signal_at(monkeypatch, 0, epoch=-1, step=-1)
    training.run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", resume=tmp_path / "k")
    assert resumed[0] == checkpoint.step
    assert [step for step in resumed if step in started[:-1]] == since  # repeated: exactly those
    assert engine_fakes.final_results(tmp_path / "k") == engine_fakes.final_results(whole)


def test_checkpoint_every_changes_no_recipe_identity(fakes, tmp_path):
    from jasc_core.recipes.model import identity_dict
    from jasc_core.runs.folder import recipe_hash

    plain, every = engine_fakes.make_recipe(**FAST), engine_fakes.make_recipe(**FAST, **{"train.checkpoint_every": 5})
    assert recipe_hash(identity_dict(plain)) == recipe_hash(identity_dict(every))  # a resume may add or change it


# mid-epoch parts ---------------------------------------------------------------------------------------------------


def test_checkpoint_clock_is_due_after_its_minutes_and_never_when_off():
    now = [0.0]
    clock = CheckpointClock(0.5, clock=lambda: now[0])
    now[0] = 29.9
    assert not clock.due()
    now[0] = 30.0
    assert clock.due()
    clock.reset()
    assert not clock.due()
    assert not CheckpointClock(None, clock=lambda: 1e9).due()


def test_epoch_progress_resumes_per_process_and_merges_for_another_process_count():
    parts = [EpochProgress(), EpochProgress()]
    for rank, part in enumerate(parts):
        part.add({"scene": 1.0 + rank, "extra/x": 0.5}, 4)
        part.add({"scene": 2.0 + rank}, 4)
    partial = partial_state(parts, 12.0)
    again = progress_for(partial, 1, 2)
    assert (again.steps, again.sums, again.counts, again.clips) == (2, {"scene": 5.0, "extra/x": 0.5},
                                                                    {"scene": 2, "extra/x": 1}, 8)
    merged, other = progress_for(partial, 0, 1), progress_for(partial, 1, 3)
    assert merged.sums == {"scene": 8.0, "extra/x": 1.0} and merged.counts == {"scene": 4, "extra/x": 2}
    assert (other.steps, other.sums, other.seconds) == (2, {}, 12.0)
    assert progress_for(None, 0, 1) == EpochProgress()


def test_epoch_end_checkpoints_of_format_2_still_resume_and_mid_epoch_ones_say_their_progress():
    from jasc_core.runs.checkpoints import CHECKPOINT_FORMAT, Checkpoint, TrainingState

    training = TrainingState(phase=0, optimizer={}, lr_scheduler={}, weighting={}, schedule={}, streams={}, rng={},
                             augment_rng=torch.zeros(1), history=[], bad_epochs=0, stopped=False, recipe={})
    flat = Checkpoint(0, 3, {}, {}, "h", {}, [], {}, training=training).to_dict()
    assert flat["format"] == CHECKPOINT_FORMAT == 3 and flat["partial"] is None
    older = {k: v for k, v in flat.items() if k != "partial"} | {"format": 2}  # written before mid-epoch checkpoints
    assert Checkpoint.from_dict(older).check_resumable("h").partial is None
    mid = Checkpoint.from_dict(flat | {"partial": {"steps": 2, "seconds": 1.0, "ranks": []}})
    assert mid.check_resumable("h").partial["steps"] == 2


# liveness ----------------------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _beat(seconds_ago: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat(timespec="seconds")


def test_a_running_run_is_alive_only_with_a_live_process_and_a_fresh_heartbeat():
    here = {"status": "running", **process_fields()}
    assert liveness(here).alive and liveness(here).status == "running"
    gone = liveness({**here, "pid": _dead_pid()})
    assert (gone.status, gone.alive) == ("interrupted: process gone", False) and "no such process" in gone.detail
    assert liveness({**here, "heartbeat": _beat(3600)}).status == "interrupted: process gone"
    elsewhere = {**here, "host": "another-machine", "pid": _dead_pid()}
    assert liveness(elsewhere).alive  # only its heartbeat can be judged from here
    assert not liveness({"status": "running"}).alive  # an older jasc wrote no heartbeat
    assert liveness({"status": "interrupted", "signal": "SIGTERM"}).status == "interrupted (SIGTERM)"
    assert liveness({"status": "finished", **process_fields()}).status == "finished"


def test_resume_refuses_a_live_run_and_listings_show_a_dead_one_as_gone(fakes, tmp_path):
    from typer.testing import CliRunner

    from jasc_core.cli import app
    from jasc_core.cli.runs import run_state_note
    from jasc_core.training import run_recipe

    run_dir = run_recipe(engine_fakes.make_recipe(**{**FAST, "train.epochs": 1}), recipe_path="fake.yaml",
                         out_dir=tmp_path / "a", evaluate=False)
    marker = run_dir / "run.json"
    meta = json.loads(marker.read_text())
    marker.write_text(json.dumps({**meta, "status": "running", **process_fields()}))  # as if this process trained it
    with pytest.raises(RunError, match="is still running"):
        run_recipe(None, recipe_path=None, resume=run_dir)
    unfinished = {k: v for k, v in meta.items() if k != "best"}  # best is recorded when training ends
    marker.write_text(json.dumps({**unfinished, "status": "running", "pid": _dead_pid(), "host": host_name(),
                                  "heartbeat": _beat(5)}))
    listing = CliRunner().invoke(app, ["runs", str(tmp_path), "--json"])
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.output)
    assert [(row["run"], row["status"]) for row in rows] == [(str(run_dir), "interrupted: process gone")]
    assert rows[0]["epochs"] == 1 and rows[0]["best"].startswith("val/score=")  # from history.json while training
    table = CliRunner().invoke(app, ["runs", str(tmp_path)])
    assert "process gone" in table.output
    assert run_state_note(run_dir).startswith(f"note: {run_dir}: interrupted: process gone (pid ")
    marker.write_text(json.dumps({**meta, "status": "running", **process_fields()}))
    assert "is still training (pid" in run_state_note(run_dir)
    marker.write_text(json.dumps({**meta, "status": "trained"}))
    assert run_state_note(run_dir) == ""


# the launcher of `jasc run --nproc` -------------------------------------------------------------------------------


def test_the_launcher_forwards_sigusr1_and_reads_workers_stopped_by_a_signal():
    from jasc_core.training.launch import interrupted_error, stop_signal_of, torchrun_args

    assert "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1" in torchrun_args(2, ["run"])
    assert stop_signal_of([143, 143]) == signal.SIGTERM and stop_signal_of([138]) == signal.SIGUSR1
    assert stop_signal_of([143, 2]) is None and stop_signal_of([137]) is None  # SIGKILL is no stop: a failure
    error = interrupted_error(signal.SIGTERM, "runs/a", 2)
    assert (str(error), error.exit_code) == ("interrupted by SIGTERM; continue with: jasc run --resume runs/a "
                                             "--nproc 2", 143)


def test_the_launcher_puts_back_the_handlers_torchrun_replaced():
    from jasc_core.training.launch import _restored_handlers

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGQUIT)}
    with _restored_handlers():
        for sig in before:
            signal.signal(sig, lambda *_: None)  # what torchrun's agent does
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.slow
@pytest.mark.parametrize("case", ["freeze", "hard", "cross_hard", "mean_teacher"])
def test_sigterm_mid_epoch_resumes_every_schedule_and_its_teacher_exactly(fakes, tmp_path, monkeypatch, case):
    """Epoch 1 (0-based) is FreezeMTL's first epoch of phase 2: the checkpoint is taken after the phase was entered
    (the best model of phase 1 loaded, the first task frozen)."""
    from test_engine_sigkill import CASES

    from jasc_core.training import run_recipe

    overrides = {**CASES[case][0], "train.epochs": 3}
    whole = run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", out_dir=tmp_path / "whole")
    _signal_at(monkeypatch, signal.SIGTERM, epoch=1, step=1)
    with pytest.raises(Stopped):
        run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", out_dir=tmp_path / "stopped")
    assert load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.pt").training.partial["steps"] == 2
    monkeypatch.undo()
    run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", resume=tmp_path / "stopped")
    assert engine_fakes.final_results(tmp_path / "stopped") == engine_fakes.final_results(whole)
    teachers = [load_checkpoint(run / "checkpoints" / "last.pt").extra_models for run in (tmp_path / "stopped", whole)]
    assert teachers[0].keys() == teachers[1].keys()
    for name, state in teachers[0].items():
        assert all(torch.equal(state[key], teachers[1][name][key]) for key in state), name
