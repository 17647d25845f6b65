"""Preemption with real processes (slow): SIGTERM to `jasc run` in the middle of an epoch, with one process and with
2 gloo processes under `jasc run --nproc 2`, gives run.json `interrupted`, exit code 143 and a resumed run identical
to an uninterrupted one; with `train.checkpoint_every`, SIGKILL then --resume repeats only the steps since the last
checkpoint; a SIGKILLed run reads as `interrupted: process gone` in `jasc runs`.

The runs go through ``tests/ddp_worker.py`` (``jasc`` with the ``engine_fakes`` components registered), with a sleep
before each step (``JASC_TEST_STEP_DELAY``) that leaves time to signal mid-epoch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import engine_fakes
import pytest
import yaml

from jasc_core.runs.checkpoints import load_checkpoint

HERE = Path(__file__).parent
OVERRIDES = {"train.epochs": 3, "evaluate.plots": False}  # 3 steps per epoch (24 clips in batches of 8)
pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    env = os.environ | {"PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | extra
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _jasc(args: list[str], nproc: int | None = None, **env: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "ddp_worker", *(["--nproc", str(nproc)] if nproc else []), *args]
    return subprocess.Popen(command, env=_env(**env), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _new(tmp_path: Path, name: str, overrides: dict, nproc: int | None = None, **env: str) -> subprocess.Popen[str]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump(engine_fakes.recipe_data(**overrides)))
    return _jasc(["run", str(recipe), "--out", str(tmp_path / name)], nproc, **env)


def _finish(job: subprocess.Popen[str], code: int = 0) -> str:
    _, err = job.communicate(timeout=300)
    assert job.returncode == code, err[-3000:]
    return err


def _wait_for(condition, job: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline and job.poll() is None:
        time.sleep(0.05)
    assert condition(), "the run never got there"


def _meta(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.mark.parametrize("nproc", [None, 2])
def test_sigterm_mid_epoch_exits_143_marks_the_run_and_resumes_to_the_uninterrupted_result(tmp_path, nproc):
    overrides = {**OVERRIDES, "train.batch_size": 4} if nproc else OVERRIDES  # 2 x 4: the same 3 steps per epoch
    _finish(_new(tmp_path, "whole", overrides, nproc))
    pids = tmp_path / "pids"
    pids.mkdir()
    job = _new(tmp_path, "stopped", overrides, nproc, JASC_TEST_STEP_DELAY="0.3", JASC_TEST_PID_DIR=str(pids))
    run = tmp_path / "stopped"
    _wait_for(lambda: engine_fakes.checkpoint_epoch(run / "checkpoints" / "last.pt") >= 0, job)
    time.sleep(0.45)  # one or two steps into epoch 2
    job.send_signal(signal.SIGTERM)  # the launcher's torchrun forwards it to the workers
    err = _finish(job, 143)
    assert f"interrupted by SIGTERM; continue with: jasc run --resume {run}" + (" --nproc 2" if nproc else "") in err
    assert err.count("interrupted by SIGTERM") == 1  # one line, from the launcher (or the one process)
    meta = _meta(run)
    assert (meta["status"], meta["signal"]) == ("interrupted", "SIGTERM")
    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    assert checkpoint.epoch == 0 and checkpoint.training.partial["steps"] in (1, 2)  # inside epoch 2
    assert len(checkpoint.training.partial["ranks"]) == (nproc or 1)

    _finish(_jasc(["run", "--resume", str(run)], nproc))
    assert engine_fakes.final_results(run) == engine_fakes.final_results(tmp_path / "whole")
    assert _meta(run)["status"] == "finished"


def test_a_scheduler_that_signals_every_process_stops_two_workers_once(tmp_path):
    """Slurm signals every process of a job step: the launcher and each worker get SIGTERM, and the workers get
    it again from the launcher; that copy is not a second signal (which would end them without a checkpoint)."""
    overrides = {**OVERRIDES, "train.batch_size": 4}
    pids = tmp_path / "pids"
    pids.mkdir()
    job = _new(tmp_path, "run", overrides, 2, JASC_TEST_STEP_DELAY="0.3", JASC_TEST_PID_DIR=str(pids))
    run = tmp_path / "run"
    _wait_for(lambda: engine_fakes.checkpoint_epoch(run / "checkpoints" / "last.pt") >= 0, job)
    time.sleep(0.45)
    for pid in [int((pids / rank).read_text()) for rank in ("0", "1")] + [job.pid]:
        os.kill(pid, signal.SIGTERM)
    _finish(job, 143)
    assert _meta(run)["signal"] == "SIGTERM"
    assert load_checkpoint(run / "checkpoints" / "last.pt").training.partial is not None


def test_sigusr1_checkpoints_and_exits_138_for_a_requeue(tmp_path):
    job = _new(tmp_path, "run", OVERRIDES, None, JASC_TEST_STEP_DELAY="0.3")
    run = tmp_path / "run"
    _wait_for(lambda: (run / "run.json").is_file() and "heartbeat" in _meta(run), job)
    time.sleep(1.0)
    job.send_signal(signal.SIGUSR1)
    err = _finish(job, 138)
    assert "interrupted by SIGUSR1" in err and _meta(run)["signal"] == "SIGUSR1"
    assert (run / "checkpoints" / "last.pt").is_file()


def test_sigkill_with_checkpoint_every_repeats_only_the_steps_since_the_last_checkpoint(tmp_path):
    overrides = {**OVERRIDES, "train.checkpoint_every": 0.5 / 60}  # every 0.5 s; steps take over 0.3 s
    _finish(_new(tmp_path, "whole", overrides))
    steps = tmp_path / "killed_steps.txt"
    job = _new(tmp_path, "killed", overrides, JASC_TEST_STEP_DELAY="0.3", JASC_TEST_STEP_LOG=str(steps))
    run, last = tmp_path / "killed", tmp_path / "killed" / "checkpoints" / "last.pt"

    def mid_epoch_two() -> bool:
        try:
            checkpoint = load_checkpoint(last)
        except Exception:  # noqa: BLE001 - not there yet, or being replaced this instant
            return False
        return checkpoint.epoch == 0 and checkpoint.training.partial is not None

    _wait_for(mid_epoch_two, job)
    time.sleep(0.2)
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=60)
    checkpoint = load_checkpoint(last)
    finished = [int(line) for line in steps.read_text().split()]
    since = [step for step in finished if step >= checkpoint.step]
    assert len(since) <= 2, (finished, checkpoint.step)  # at most one interval of steps is lost

    listing = subprocess.run([sys.executable, "-m", "ddp_worker", "runs", str(tmp_path), "--json"], env=_env(),
                             capture_output=True, text=True, timeout=120)
    rows = {row["run"]: row["status"] for row in json.loads(listing.stdout)}
    assert rows[str(run)] == "interrupted: process gone" and rows[str(tmp_path / "whole")] == "finished"

    resumed_steps = tmp_path / "resumed_steps.txt"
    _finish(_jasc(["run", "--resume", str(run)], JASC_TEST_STEP_LOG=str(resumed_steps)))
    resumed = [int(line) for line in resumed_steps.read_text().split()]
    assert resumed[0] == checkpoint.step
    assert [step for step in resumed if step in finished] == since  # repeated: exactly the steps since it
    assert engine_fakes.final_results(run) == engine_fakes.final_results(tmp_path / "whole")
