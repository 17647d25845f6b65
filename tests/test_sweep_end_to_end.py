"""`jasc sweep` over real (tiny) runs: run folders, aggregation, and a second invocation that skips finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"
TINY = ["data.minutes=1.5", "train.epochs=1", "evaluate.plots=false", "model.encoder.channels=[8, 8, 8]",
        "model.heads.scene.channels=[8, 8]"]


@pytest.fixture
def sweep_args(tmp_path, monkeypatch):
    monkeypatch.setenv("JASC_CACHE", str(tmp_path / "cache"))
    args = ["sweep", str(QUICKSTART), "--grid", "weighting.alpha=0.1,1", "--seeds", "1", "--jobs", "2",
            "--out", str(tmp_path / "sweep")]
    for expression in TINY:
        args += ["--set", expression]
    return args, tmp_path / "sweep"


def test_sweep_runs_aggregates_and_resumes(cli, sweep_args):
    args, out = sweep_args
    code, stdout, stderr = cli(*args)
    assert code == 0, stderr + stdout
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["weighting.alpha=0.1__seed0", "weighting.alpha=1__seed0"]
    for run in runs:
        assert json.loads((out / "runs" / run / "run.json").read_text())["status"] == "finished"
    summary = json.loads((out / "summary.json").read_text())
    assert [row["config"]["weighting.alpha"] for row in summary["rows"]] == [0.1, 1]
    assert "scene/accuracy" in summary["metrics_shown"]
    assert (out / "summary.csv").is_file() and (out / "summary.png").is_file()
    assert "scene/accuracy" in stdout

    # A second invocation finds every run finished and starts no process.
    code, stdout, stderr = cli(*args)
    assert code == 0 and "(2 already finished)" in stdout and "finished weighting" not in stdout

    # A different plan in the same folder is refused rather than mixed in.
    code, _, stderr = cli(*[a if a != "weighting.alpha=0.1,1" else "weighting.alpha=0.5,1" for a in args])
    assert code == 2 and "holds a different sweep" in stderr


def test_sweep_rejects_bad_grid_value_before_running(cli, sweep_args):
    args, out = sweep_args
    code, _, stderr = cli(*[a if a != "weighting.alpha=0.1,1" else "weighting.alpha=0.1,-1" for a in args])
    assert code == 2 and "weighting.alpha" in stderr and not (out / "runs").exists()
