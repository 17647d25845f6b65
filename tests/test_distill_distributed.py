"""Distillation under DDP: the processes exchange the teachers' outputs they computed, so the job computes each clip
once and one cache file holds them all; the distillation terms are shared over processes like the task losses, so
2 processes with batch B record and learn what 1 process with batch 2B does, uneven shares included; a killed job
resumes to the uninterrupted result.

The fast tests run two distillers in one process, each in a thread standing for a rank, with the exchange's
collective played by a barrier; the 2-process runs (torchrun, gloo) are slow-marked (20-60 s each on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import engine_fakes
import numpy as np
import pytest
import torch
from test_distill import _teacher
from test_distributed import _env, _history, _kill_rank_1_in_epoch_2, _launch

from jasc_core import Batch
from jasc_core.model.pipeline import Labels
from jasc_core.recipes.blocks import DistillConfig
from jasc_core.training.distill import Distiller, teacher_key
from jasc_core.training.runtime import Runtime


@pytest.fixture
def teachers(fakes, tmp_path):
    return [str(_teacher(tmp_path, "t1")), str(_teacher(tmp_path, "t2", **{"model.encoder.channels": 12}))]


def _distiller(cache: Path, teachers: list[str], rank: int = 0, collective: _Collective | None = None) -> Distiller:
    block = DistillConfig(teachers=teachers, temperature=2.0, weight=0.5, cache_dir=str(cache))
    labels = Labels({"scene": ["high", "low"], "event": ["beep", "buzz"]})
    return Distiller(block, labels, ("scene", "event"), 8000, _ThreadRank(rank, collective))


class _Collective:
    """``Runtime.all_gather`` for ranks played by threads: each thread's value, in rank order, once all have given one."""

    def __init__(self, world_size: int) -> None:
        self.values: list[object] = [None] * world_size
        self.barrier = threading.Barrier(world_size)
        self.rank = threading.local()

    def __call__(self, value: object) -> list[object]:
        self.values[self.rank.value] = value
        self.barrier.wait()
        result = list(self.values)
        self.barrier.wait()  # nobody overwrites a value before everyone has read it
        return result


class _ThreadRank(Runtime):
    """A one-process CPU runtime that plays rank ``rank`` of a job whose collective is ``collective``."""

    def __init__(self, rank: int, collective: _Collective | None) -> None:
        super().__init__("cpu")
        self.rank, self.collective = rank, collective

    def all_gather(self, value: object) -> list[object]:
        return self.collective(value) if self.collective is not None else super().all_gather(value)


def _in_ranks(collective: _Collective, work: list) -> None:
    """``work[r]()`` in a thread per rank ``r``, joined; an exception in one is raised here."""
    errors = []

    def run(rank: int) -> None:
        collective.rank.value = rank
        try:
            work[rank]()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
            collective.barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]


def _clips(ids: str) -> Batch:
    generator = torch.Generator().manual_seed(0)
    waves = {c: torch.randn(8000, generator=generator) for c in "abcdefgh"}
    return Batch(waveform=torch.stack([waves[c] for c in ids]), index=torch.arange(len(ids)), clip_ids=list(ids))


def test_the_processes_exchange_their_teacher_outputs_so_each_clip_is_computed_once(teachers, tmp_path):
    collective = _Collective(2)
    ranks = [_distiller(tmp_path / "cache", teachers, rank=r, collective=collective) for r in (0, 1)]
    # Epoch 1: each process reads its share of each global batch (a pass covers every clip once); the epoch end
    # exchanges. Epoch 2: the pass is shuffled anew, so each process reads clips the other one computed.
    shares = [["abcd"], ["efgh"]]
    _in_ranks(collective, [lambda r=r: ([ranks[r].attach(_clips(s)) for s in shares[r]], ranks[r].save())
                           for r in (0, 1)])
    assert [d.computed for d in ranks] == [4, 4]
    assert all(sorted(d.cache) == sorted(ranks[0].cache) and len(d.cache) == 8 for d in ranks)
    second = [ranks[0].attach(_clips("hgea")), ranks[1].attach(_clips("bcfd"))]
    assert [d.computed for d in ranks] == [4, 4]  # every clip served from the exchanged cache
    # The outputs served are those of the process that computed them, bit for bit.
    alone = _distiller(tmp_path / "alone", teachers).attach(_clips("hgea"))
    assert torch.equal(second[0].targets["scene/teacher"], alone.targets["scene/teacher"])
    assert torch.equal(second[0].targets["event/teacher"], alone.targets["event/teacher"])
    # One file, written by the main process, holding every clip: a resume with any number of processes reads it.
    assert os.listdir(tmp_path / "cache") == [f"{teacher_key(teachers)}.pt"]
    resumed = _distiller(tmp_path / "cache", teachers, rank=1)
    resumed.attach(_clips("abcdefgh"))
    assert resumed.computed == 0


class _RecordingRuntime(Runtime):
    """A one-process runtime that records what is shared and returns, as the distributed runtime's value, the
    clip-weighted mean with another process's ``other`` (value, clips)."""

    def __init__(self, other: dict[str, tuple[float, int]]) -> None:
        super().__init__("cpu")
        self.other, self.calls = other, []

    def share_losses(self, losses, tasks):
        self.calls.append(({name: (float(v.detach()), n) for name, (v, n) in losses.items()}, list(tasks)))
        return {name: (losses[name][0] * losses[name][1] + self.other[name][0] * self.other[name][1])
                / (losses[name][1] + self.other[name][1]) for name in tasks}


def test_the_terms_are_shared_by_clip_count_before_the_weight(teachers, tmp_path):
    """Each term goes to ``share_losses`` unweighted, with the number of clips it averages over and every task's
    name in the same order on every process (a collective); the weight multiplies the shared mean."""
    distiller = _distiller(tmp_path / "cache", teachers)  # weight 0.5
    batch = distiller.attach(_clips("abc"))
    outputs = {"scene": torch.randn(3, 2, requires_grad=True), "event": torch.randn(3, 5, 2, requires_grad=True)}
    alone = distiller.losses(outputs, batch)
    runtime = _RecordingRuntime({"distill/scene": (1.0, 2), "distill/event": (0.5, 2)})
    shared = distiller.losses(outputs, batch, runtime)
    (terms, names), = runtime.calls
    assert names == ["distill/scene", "distill/event"]
    assert {name: n for name, (_, n) in terms.items()} == {"distill/scene": 3, "distill/event": 3}
    assert terms["distill/scene"][0] == pytest.approx(float(alone["distill/scene"].detach()) / 0.5)
    assert terms["distill/event"][0] == pytest.approx(float(alone["distill/event"].detach()) / 0.5)
    assert float(shared["distill/scene"]) == pytest.approx(0.5 * (terms["distill/scene"][0] * 3 + 1.0 * 2) / 5)
    assert float(shared["distill/event"]) == pytest.approx(0.5 * (terms["distill/event"][0] * 3 + 0.5 * 2) / 5)


# two processes (torchrun, gloo) ---------------------------------------------------------------------------------


def _distill_block(teachers: list[str], cache: Path) -> dict:
    return {"teachers": teachers, "temperature": 2.0, "weight": 0.5, "cache_dir": str(cache)}


def _all_losses(run: Path) -> np.ndarray:
    return np.array([[r["train_losses"][t] for t in ("scene", "event")] +
                     [r["extra_losses"][t] for t in ("distill/scene", "distill/event")] for r in _history(run)])


@pytest.mark.slow
def test_two_processes_with_b_distil_as_one_process_with_2b_and_compute_each_clip_once(teachers, tmp_path):
    """21 training clips: global batches of 8, 8 and 5, the last one shared 3 + 2. Before the terms were shared,
    the 2-process run averaged the two processes' means (of 3 and of 2 clips), not the mean of 5."""
    from jasc_core.training import run_recipe

    common = {"train.epochs": 2, "evaluate.plots": False, "model.encoder.dropout": 0.0,
              "model.encoder.batch_norm": True, "data.n_train": 21, "data.n_val": 7}
    one = run_recipe(engine_fakes.make_recipe(**common, **{"train.batch_size": 8,
                                                           "distill": _distill_block(teachers, tmp_path / "c1")}),
                     recipe_path="one.yaml", out_dir=tmp_path / "one")
    log = tmp_path / "computed.log"
    two = _launch(tmp_path, "two", {**common, "train.batch_size": 4, "train.sync_batchnorm": True,
                                    "distill": _distill_block(teachers, tmp_path / "c2")}, 2,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"JASC_TEST_DISTILL_LOG": str(log)})
    _, err = two.communicate(timeout=300)
    assert two.returncode == 0, err[-3000:]
    np.testing.assert_allclose(_all_losses(tmp_path / "two"), _all_losses(one), rtol=1e-5, atol=1e-6)
    # Each rank's clips computed by the end of epochs 1 and 2: 21 clips once in the job, none again in epoch 2.
    computed = sorted(tuple(map(int, line.split())) for line in log.read_text().split("\n") if line)
    assert [(rank, epoch) for rank, epoch, _ in computed] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert computed[0][2] + computed[2][2] == 21 and computed[1][2] == computed[0][2]
    assert computed[3][2] == computed[2][2]
    assert os.listdir(tmp_path / "c2") == [f"{teacher_key(teachers)}.pt"]


@pytest.mark.slow
def test_a_killed_distilled_job_resumes_to_the_uninterrupted_result(teachers, tmp_path):
    overrides = {"train.epochs": 3, "evaluate.plots": False, "train.batch_size": 4}
    whole = _launch(tmp_path, "whole", {**overrides, "distill": _distill_block(teachers, tmp_path / "c1")}, 2)
    assert whole.returncode == 0, whole.stderr[-3000:]
    log = tmp_path / "computed.log"
    _kill_rank_1_in_epoch_2(tmp_path, {**overrides, "distill": _distill_block(teachers, tmp_path / "c2")})
    resumed = subprocess.run([sys.executable, "-m", "ddp_worker", "--nproc", "2", "run", "--resume",
                              str(tmp_path / "killed")], env=_env(JASC_TEST_DISTILL_LOG=str(log)),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert engine_fakes.final_results(tmp_path / "killed") == engine_fakes.final_results(tmp_path / "whole")
    # The cache written at the end of epoch 1 serves every clip of the resumed epochs: no teacher runs again.
    assert {int(line.split()[2]) for line in log.read_text().split("\n") if line} == {0}
