"""Sweep planning and aggregation (the end-to-end sweep over real runs is in test_sweep_end_to_end)."""

from __future__ import annotations

import json
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core import ConfigError
from jasc_core.sweeps.plan import SweepRun, parse_grid, plan_runs
from jasc_core.sweeps.summary import aggregate, write_summary


def test_parse_grid_yaml_values():
    assert parse_grid(["weighting.alpha=0.001,0.01,1", "weighting.name=constant,mfl"]) == [
        ("weighting.alpha", [0.001, 0.01, 1]), ("weighting.name", ["constant", "mfl"])]


@pytest.mark.parametrize("bad", ["weighting.alpha", "=1,2", "a.b=", "a=1,1"])
def test_parse_grid_rejects(bad):
    with pytest.raises(ConfigError, match="--grid"):
        parse_grid([bad])


def test_same_path_twice_rejected():
    with pytest.raises(ConfigError, match="same path twice"):
        parse_grid(["a.b=1", "a.b=2"])


@settings(deadline=None)  # labels go through yaml.safe_dump: slow on a loaded machine, not wrong
@given(st.lists(st.integers(1, 4), min_size=0, max_size=3), st.integers(1, 4))
def test_plan_is_grid_times_seeds_with_unique_labels(sizes, seeds):
    axes = [(f"x{i}.v", list(range(n))) for i, n in enumerate(sizes)]
    runs = plan_runs(axes, seeds)
    assert len(runs) == math.prod(sizes) * seeds
    assert len({run.label for run in runs}) == len(runs)
    assert all(run.sets()[-1] == f"seed={run.seed}" for run in runs)


def fake_run(out, run: SweepRun, metrics: dict, status="finished"):
    folder = out / "runs" / run.label
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": status}))
    (folder / "metrics.json").write_text(json.dumps({"eval": metrics}))


def test_aggregate_mean_std_and_skips_unfinished(tmp_path):
    runs = plan_runs(parse_grid(["weighting.alpha=0.01,1"]), 3)
    assert [run.seed for run in runs] == [0, 0, 1, 1, 2, 2]  # seed-major: a partial sweep covers the grid
    values = {0.01: [0.5, 0.6, 0.7], 1: [0.2, 0.4, 0.9]}
    for run in runs:
        value = values[dict(run.config)["weighting.alpha"]][run.seed]
        status = "running" if value == 0.9 else "finished"
        fake_run(tmp_path, run, {"scene": {"accuracy": value}, "event": {"frame_micro_f1": value / 2}}, status)
    summary = aggregate(tmp_path, runs)
    rows = {row["config"]["weighting.alpha"]: row["metrics"] for row in summary["rows"]}
    assert rows[0.01]["scene/accuracy"]["mean"] == pytest.approx(0.6)
    assert rows[0.01]["scene/accuracy"]["std"] == pytest.approx(0.1)
    assert rows[1]["scene/accuracy"]["n"] == 2  # the unfinished run is not counted
    assert summary["metrics_shown"] == ["scene/accuracy", "event/frame_micro_f1"]
    write_summary(tmp_path, summary)
    assert (tmp_path / "summary.png").stat().st_size > 0
    header = (tmp_path / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("weighting.alpha,n,")


@pytest.mark.parametrize(("jobs", "threads", "expected"), [(2, 3, "3"), (2, None, None)])
def test_threads_per_run_default_to_cores_over_jobs(tmp_path, monkeypatch, jobs, threads, expected):
    """Several sweeps sharing a machine give ``--threads``; alone, each run gets its share of the cores."""
    import subprocess
    from pathlib import Path

    from jasc_core.sweeps import launchers, sweep

    seen = []
    monkeypatch.setattr(launchers.subprocess, "run", lambda command, **kw: seen.append(kw["env"]["OMP_NUM_THREADS"])
                        or subprocess.CompletedProcess(command, 0))
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"
    sweep.run_sweep(recipe, ["train.epochs=1,2"], seeds=1, jobs=jobs, threads=threads, out=tmp_path / "s",
                    echo=lambda line: None)
    cores = str(max(1, (os.cpu_count() or 1) // jobs))
    assert seen == [expected or cores] * 2
