"""Distributed training (torchrun, DDP) on the CPU with gloo: 2 processes with batch B read and learn what 1 process
with batch 2B does; one run folder; a killed rank stops the job and the run resumes to the uninterrupted result.

The 2-process runs go through the launcher of ``jasc run --nproc`` (``launch_run``, torchrun in that process),
pointed at ``tests/ddp_worker.py`` so that the workers know the ``engine_fakes`` components.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import engine_fakes
import numpy as np
import pytest
import torch
import yaml

from jasc_core.errors import RunError
from jasc_core.inference.scoring import SplitScores
from jasc_core.runs.checkpoints import load_checkpoint
from jasc_core.training.distributed import join_scores, share_bounds
from jasc_core.training.launch import failure_message
from jasc_core.training.loop import Trainer

HERE = Path(__file__).parent
#: Dropout off: every process draws its dropout masks from the same generator, so with dropout two processes
#: with B clips cannot draw what one process draws for 2B (docs/distributed.md).
#: 7 validation clips: shares of 4 and 3.
EXACT = {"train.epochs": 2, "evaluate.plots": False, "model.encoder.dropout": 0.0, "model.encoder.batch_norm": True,
         "data.n_val": 7}
WEIGHTINGS = {"constant": {"name": "constant"}, "dwa": {"name": "dwa"}, "pcgrad": {"name": "pcgrad"}}


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    env = os.environ | {"PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | extra
    env.pop("PYTEST_CURRENT_TEST", None)  # the workers print their epoch lines as they do for a user
    return env


def _recipe(tmp_path: Path, name: str, overrides: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(engine_fakes.recipe_data(**overrides)))
    return path


def _launch(tmp_path: Path, name: str, overrides: dict, nproc: int | None, *args: str,
            **popen: object) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """``jasc run RECIPE --out tmp/name [--nproc N]`` with the fakes registered; Popen when ``popen`` is given."""
    command = [sys.executable, "-m", "ddp_worker", *(["--nproc", str(nproc)] if nproc else []), "run",
               str(_recipe(tmp_path, name, overrides)), "--out", str(tmp_path / name), *args]
    if popen:
        return subprocess.Popen(command, env=_env(**popen.pop("env", {})), text=True, **popen)
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)


def _history(run: Path) -> list[dict]:
    return json.loads((run / "history.json").read_text())


def _losses(run: Path) -> np.ndarray:
    return np.array([[r["train_losses"][t] for t in ("scene", "event")] for r in _history(run)])


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in r["val"].items() if "loss" not in k} for r in _history(run)]


# pure parts: shares and joins --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5, 8, 9])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shares_are_contiguous_and_cover_every_item_once(n, world):
    bounds = [share_bounds(n, rank, world) for rank in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(stop == start for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False))
    assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def _reader(world: int, rank: int, batch_size: int, n: int = 10):
    from jasc_core.contract.context import StreamInfo
    from jasc_core.training.streams import StreamReader

    def shard(items):
        start, stop = share_bounds(len(items), rank, world)
        return items[start:stop]

    info = StreamInfo("scene", frozenset({"scene"}), 1.0, n, batch_size * world)
    return StreamReader(info, list(range(100, 100 + n)), list(range(n)), seed=5, num_workers=0, shard=shard)


def test_two_processes_read_the_global_batches_of_one_and_resume_with_another_count():
    one = _reader(1, 0, 4)
    ranks = [_reader(2, r, 2) for r in range(2)]
    for _ in range(4):  # 10 clips in global batches of 4: 4, 4, 2, then 4 of the next pass
        assert ranks[0].next() + ranks[1].next() == one.next()
    state = ranks[0].state()
    for other in (ranks[1].state(), one.state()):  # a global position: 4 clips into the 2nd pass
        assert torch.equal(state["pass_start"], other["pass_start"])
        assert state["consumed_clips"] == other["consumed_clips"] == 4
    expected = [one.next() for _ in range(2)]  # the rest of the 2nd pass: 4 and 2 clips
    single = _reader(1, 0, 3)  # resumed on one process with batch 3: the same permutation, other cuts
    single.restore(state)
    assert single.next() + single.next() == expected[0] + expected[1]


def test_joined_scores_are_in_split_order_with_exact_loss_means():
    def part(ids, scene_loss, frames):
        n = len(ids)
        return SplitScores(clip_ids=ids, hop_seconds=0.05, durations=[1.0] * n,
                           probs={"scene": np.arange(n, dtype=float)[:, None] + int(ids[0][1:]),
                                  "event": np.ones((n, frames, 2))},
                           targets={"scene": np.zeros(n, dtype=int), "event": np.zeros((n, frames, 2))},
                           labelled={"scene": np.ones(n, bool), "event": np.ones(n, bool)},
                           losses={"scene": scene_loss}, loss_counts={"scene": n})

    # Two loaders (clip lengths) a0..a2 and b0..b2, each split 2 + 1 over two processes.
    rank0, rank1 = part(["a0", "a1", "b0", "b1"], 1.0, 3), part(["a2", "b2"], 4.0, 2)
    joined = join_scores([rank0, rank1], ["a0", "a1", "a2", "b0", "b1", "b2"])
    assert joined.clip_ids == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert joined.losses["scene"] == pytest.approx((1.0 * 4 + 4.0 * 2) / 6)
    assert joined.probs["event"].shape == (6, 3, 2) and joined.probs["event"][2, 2].sum() == 0  # padded frames
    assert joined.probs["scene"][:, 0].tolist() == [0.0, 1.0, 2.0, 2.0, 3.0, 3.0]


def test_failure_message_names_the_rank_and_the_signal(tmp_path):
    line = failure_message(1, -signal.SIGKILL, 4242, tmp_path, 2)
    assert line == "rank 1 (pid 4242) was killed by signal SIGKILL; torchrun stopped the other processes"
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    assert failure_message(0, 2, 7, tmp_path, 2).endswith(f"exited with code 2; torchrun stopped the other "
                                                          f"processes; continue with: jasc run --resume {tmp_path} "
                                                          f"--nproc 2")


# two processes against one -----------------------------------------------------------------------------------------


def _one_with_2b_and_two_with_b(tmp_path, overrides, *, sync):
    """1 process with batch 8 (its run folder), 2 processes with batch 4 each (the finished launch), and the relative
    gap between their per-epoch train losses."""
    from jasc_core.training import run_recipe

    one = run_recipe(engine_fakes.make_recipe(**overrides, **{"train.batch_size": 8}), recipe_path="one.yaml",
                     out_dir=tmp_path / "one")
    two = _launch(tmp_path, "two", {**overrides, "train.batch_size": 4, "train.sync_batchnorm": sync}, 2)
    assert two.returncode == 0, two.stderr[-3000:]
    return one, two, np.abs(_losses(tmp_path / "two") - _losses(one)) / np.abs(_losses(one))


@pytest.mark.parametrize("weighting", sorted(WEIGHTINGS))
def test_two_processes_with_b_learn_what_one_process_with_2b_learns(fakes, tmp_path, weighting):
    one, two, gap = _one_with_2b_and_two_with_b(tmp_path, {**EXACT, "weighting": WEIGHTINGS[weighting]}, sync=True)
    print(f"{weighting}: relative train-loss difference with sync batch norm: max {gap.max():.3g}")
    np.testing.assert_allclose(_losses(tmp_path / "two"), _losses(one), rtol=1e-5, atol=1e-6)
    # Validation is compared without batch norm (next test): see there why.
    # Written once, by rank 0: one run folder, one history with one record per epoch, one console line per epoch.
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["one", "two"]
    assert len(_history(tmp_path / "two")) == 2
    assert two.stdout.count("run folder:") == 1 and two.stderr.count("epoch 1/2:") == 1
    assert json.loads((tmp_path / "two" / "run.json").read_text())["status"] == "finished"


def test_validation_losses_are_those_of_one_process_without_batch_norm(fakes, tmp_path):
    """Without batch norm the models of 2 x B and 1 x 2B stay equal, and so do validation losses and metrics. (With
    batch norm the conv bias before it has a gradient of ~0 that Adam scales up to steps of lr: the biases, and with
    them the running means used in validation, drift apart by rounding noise; training losses do not see it.)"""
    from jasc_core.training import run_recipe

    common = {**EXACT, "model.encoder.batch_norm": False}
    one = run_recipe(engine_fakes.make_recipe(**common, **{"train.batch_size": 8}), recipe_path="one.yaml",
                     out_dir=tmp_path / "one")
    two = _launch(tmp_path, "two", {**common, "train.batch_size": 4}, 2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert _metrics(tmp_path / "two") == _metrics(one)  # the whole split, gathered from shares of 4 and 3 clips
    val_one, val_two = _history(one)[-1]["val"], _history(tmp_path / "two")[-1]["val"]
    assert val_two == pytest.approx(val_one, rel=1e-5)


# schedules: every process keeps the same student and EMA teacher -------------------------------------------------

SCHEDULES = {
    # 003's disjoint streams: two forwards per step (scene and event batches), an EMA teacher (CrossMTL).
    "soft+cross": {"name": "soft", "cross": {"weight": 1.0}},
    "hard+cross": {"name": "hard", "cross": {"weight": 1.0}},
    "freeze": {"name": "freeze", "order": ["event", "scene"], "first_epochs": 1},
}


@pytest.mark.parametrize("schedule", [
    "soft+cross", pytest.param("hard+cross", marks=pytest.mark.slow), pytest.param("freeze", marks=pytest.mark.slow)])
def test_every_process_ends_with_the_same_student_and_teacher(tmp_path, schedule):
    """Batch norm not synchronised and dropout on: the processes see different batch statistics and draw masks for
    different clips, yet the main process's buffers are given to all after each step, so students and EMA teachers
    (whose running statistics come from their own forward passes) stay identical."""
    overrides = {"data": {"name": "fake_disjoint"}, "evaluate.plots": False, "model.encoder.batch_norm": True,
                 "train.epochs": 2, "train.batch_size": 3, "schedule": SCHEDULES[schedule]}
    states = tmp_path / "states"
    states.mkdir()
    job = _launch(tmp_path, "run", overrides, 2, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  env={"JASC_TEST_STATE_DIR": str(states)})
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-3000:]
    rank0, rank1 = (torch.load(states / f"{r}.pt", weights_only=False) for r in (0, 1))

    def tensors(state: dict) -> dict[str, torch.Tensor]:
        extra = {f"{name}.{key}": value for name, model in state["extra"].items() for key, value in model.items()}
        return {**state["model"], **extra}

    first, second = tensors(rank0), tensors(rank1)
    assert first.keys() == second.keys()
    assert [key for key in first if not torch.equal(first[key], second[key])] == []
    assert ("teacher" in rank0["extra"]) == ("cross" in schedule)


# a rank killed mid-epoch -----------------------------------------------------------------------------------------


def _kill_rank_1_in_epoch_2(tmp_path: Path, overrides: dict, env: dict | None = None) -> tuple[int, str]:
    """A 2-process job ``tmp_path / "killed"`` whose rank 1 is SIGKILLed one or two steps into epoch 2; returns that
    rank's pid and the job's stderr (the job has exited with 2)."""
    pids = tmp_path / "pids"
    pids.mkdir()
    job = _launch(tmp_path, "killed", overrides, 2, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  env={"JASC_TEST_STEP_DELAY": "0.3", "JASC_TEST_PID_DIR": str(pids), **(env or {})})
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while engine_fakes.checkpoint_epoch(last) < 0 and time.time() < deadline and job.poll() is None:
        time.sleep(0.05)
    time.sleep(0.45)  # one or two steps into epoch 2
    rank1 = int((pids / "1").read_text())
    os.kill(rank1, signal.SIGKILL)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 2
    return rank1, err


@pytest.mark.slow
@pytest.mark.parametrize("resume_nproc", [2, 1])
def test_killing_one_rank_stops_the_job_and_resume_matches_an_uninterrupted_run(tmp_path, resume_nproc):
    overrides = {"train.epochs": 3, "evaluate.plots": False, "train.batch_size": 4}
    whole = _launch(tmp_path, "whole", overrides, 2)
    assert whole.returncode == 0, whole.stderr[-3000:]

    rank1, err = _kill_rank_1_in_epoch_2(tmp_path, overrides)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    assert f"error: rank 1 (pid {rank1}) was killed by signal SIGKILL; torchrun stopped the other processes; " \
           f"continue with: jasc run --resume {tmp_path / 'killed'} --nproc 2" in err
    assert load_checkpoint(last).epoch == 0  # the last complete epoch, nothing half-written

    resumed = subprocess.run([sys.executable, "-m", "ddp_worker", "--nproc", str(resume_nproc), "run", "--resume",
                              str(tmp_path / "killed")], env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    history, metrics = engine_fakes.final_results(tmp_path / "killed")
    whole_history, whole_metrics = engine_fakes.final_results(tmp_path / "whole")
    if resume_nproc == 2:
        assert (history, metrics) == (whole_history, whole_metrics)
    else:  # the same permutation in global batches of 4, not 8: a finished run, the same up to the kill
        assert history[0] == whole_history[0] and len(history) == 3
        assert history[1]["step"] - history[0]["step"] == 2 * (whole_history[1]["step"] - whole_history[0]["step"])
        assert json.loads((tmp_path / "killed" / "run.json").read_text())["status"] == "finished"


# how far apart without synchronised batch norm (figure quoted in docs/distributed.md) --------------------------------


@pytest.mark.slow
def test_without_sync_batchnorm_two_processes_drift_from_one(fakes, tmp_path):
    _, _, gap = _one_with_2b_and_two_with_b(tmp_path, EXACT, sync=False)
    print(f"relative train-loss difference without sync batch norm: max {gap.max():.3g}, per epoch {gap.tolist()}")
    assert gap.max() > 1e-4  # batch statistics over 4 clips are not those over 8


# nccl ----------------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nccl)")
def test_nccl_one_process_per_gpu_learns_what_one_process_learns(fakes, tmp_path):
    """World size = the GPUs of this machine (one process each); with one GPU this checks nccl, DDP on CUDA and
    torch's SyncBatchNorm against a plain one-process run with the same global batch."""
    from jasc_core.training import run_recipe

    gpus = torch.cuda.device_count()
    common = {**EXACT, "train.device": "cuda"}
    one = run_recipe(engine_fakes.make_recipe(**common, **{"train.batch_size": 4 * gpus}), recipe_path="one.yaml",
                     out_dir=tmp_path / "one")
    many = _launch(tmp_path, "many", {**common, "train.batch_size": 4, "train.sync_batchnorm": True}, gpus)
    assert many.returncode == 0, many.stderr[-3000:]
    np.testing.assert_allclose(_losses(tmp_path / "many"), _losses(one), rtol=1e-4, atol=1e-5)
    assert _metrics(tmp_path / "many") == _metrics(one)


def test_a_process_with_finite_losses_stops_at_the_step_where_another_process_saw_a_non_finite_one(tmp_path):
    # Before, the process that saw the NaN raised alone, before the step's collectives: the others waited in them
    # until torchrun killed them, and a non-main process wrote run.json.
    written = []

    class OtherRankSawNaN:
        def any_process(self, flag):
            return True

        def main_only(self, write):
            written.append("write")

    trainer = SimpleNamespace(runtime=OtherRankSawNaN(), run=SimpleNamespace(last=tmp_path / "last.pt"), step=4,
                              epoch_step=1)
    with pytest.raises(RunError, match=r"non-finite loss on another process at step 5 \(epoch 2, batch 2\)"):
        Trainer._stop_if_not_finite(trainer, [], 1)
    assert written == ["write"]  # through main_only: the main process alone writes run.json
    trainer.runtime.any_process = lambda flag: flag
    Trainer._stop_if_not_finite(trainer, [], 1)  # nothing anywhere: the step goes on


def test_joined_scores_list_tasks_in_the_same_order_whatever_the_hash_seed():
    code = ("import numpy as np; from jasc_core.inference.scoring import SplitScores; "
            "from jasc_core.training.distributed import join_scores; "
            "p = SplitScores(['a'], 0.1, [1.0], probs={'scene': np.zeros((1, 2)), 'event': np.zeros((1, 3, 2))}, "
            "targets={'scene': np.zeros(1), 'event': np.zeros((1, 3, 2))}, "
            "labelled={'scene': np.ones(1, bool), 'event': np.ones(1, bool)}); "
            "print(list(join_scores([p, p], None).probs))")
    orders = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                             capture_output=True, text=True, check=True).stdout.strip() for seed in range(6)}
    assert orders == {"['scene', 'event']"}
