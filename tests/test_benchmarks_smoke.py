"""Every script under benchmarks/ runs end to end at tiny sizes (seconds each), so that none breaks unnoticed.

Each script runs as ``python benchmarks/<name>.py`` in a child process with one thread, as a user would run it; the
test checks the exit code and a line of what it prints, not the figures (they depend on the machine). The four
that take tens of seconds are marked slow; `.ci/run` runs them before the default suite, so every script is run in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
#: A tiny quickstart-shaped recipe: one synthetic minute at 8 kHz, a 4-channel network.
TINY_RECIPE = """\
description: tiny
data: {name: synthetic, preset: tut-joint, minutes: 1, sample_rate: 8000}
features: {name: logmel, sample_rate: 8000, n_mels: 16, win_ms: 40, hop_ms: 40}
model:
  encoder: {name: tonami_cnn, channels: [4, 4, 4], freq_pools: [2, 2, 2]}
  heads:
    scene: {name: tonami_scene, channels: [8, 8]}
    event: {name: bigru, hidden_size: 8, dropout: 0.0}
weighting: {name: constant}
schedule: {name: soft}
train: {epochs: 2, batch_size: 4, optimizer: {name: radam, lr: 0.003}}
evaluate: {split: eval, threshold: 0.5, plots: false}
output: {dir: runs}
"""


def run_script(name: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JASC_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, f"benchmarks/{name} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE, encoding="utf-8")
    return path


def test_every_benchmark_has_a_smoke_test():
    tested = {"dcase_t1_distillation.py", "features.py", "inference.py", "run_throughput.py", "scale.py", "synth.py",
              "thresholds.py", "train_throughput.py"}
    assert {p.name for p in BENCHMARKS.glob("*.py")} == tested


def test_synth(tmp_path):
    assert "real-time factor" in run_script("synth.py", "--minutes", "0.05", "--sample-rate", "8000",
                                            tmp_path=tmp_path)


def test_features(tmp_path):
    out = run_script("features.py", "--clips", "1", "--seconds", "0.5", "--repeats", "1", "--devices", "cpu",
                     "--no-librosa", tmp_path=tmp_path)
    assert "torch" in out


@pytest.mark.slow  # tens of seconds: .ci/run runs the slow smoke tests before the default suite
def test_inference(tmp_path, tiny_recipe):
    out = run_script("inference.py", "--recipes", str(tiny_recipe), "--seconds", "1", "--repeats", "1",
                     "--matmul-seconds", "0.05", "--calibration-clips", "2", tmp_path=tmp_path)
    assert "limit" in out and "onnx-int8" in out


@pytest.mark.slow  # tens of seconds: .ci/run runs the slow smoke tests before the default suite
def test_thresholds(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("dcase2017", "dcase2019"):
        arrays = {}
        for part, n in (("val", 30), ("eval", 20)):
            targets = (rng.random((n, 3)) < 0.4).astype(np.float32)
            arrays[f"{part}_targets"] = targets
            arrays[f"{part}_scores"] = np.clip(0.6 * targets + rng.random((n, 3)) * 0.5, 0, 1).astype(np.float32)
        np.savez(tmp_path / f"{name}.npz", **arrays)
    out = run_script("thresholds.py", "--data", str(tmp_path), "--repeats", "1", "--bootstrap", "10", "--json",
                     tmp_path=tmp_path)
    assert json.loads(out)


@pytest.mark.slow  # tens of seconds: .ci/run runs the slow smoke tests before the default suite
def test_train_throughput(tmp_path):
    out = run_script("train_throughput.py", "--device", "cpu", "--models", "tonami", "--precisions", "fp32",
                     "--compile", "off", "--layouts", "contiguous", "--batch-size", "1", "--clip-seconds", "0.5",
                     "--steps", "1", "--rounds", "1", "--matmul-seconds", "0.05", "--skip-data", "--json",
                     tmp_path=tmp_path)
    assert json.loads(out)["rows"]


@pytest.mark.slow  # tens of seconds: .ci/run runs the slow smoke tests before the default suite
def test_scale(tmp_path):
    out = run_script("scale.py", "--hours", "0.01", "--source-rate", "8000", "--workers", "0", "--steps", "1",
                     "--batch-size", "2", "--configs", "none", "--json", tmp_path=tmp_path)
    assert json.loads(out)["runs"]


def test_run_throughput(tmp_path, tiny_recipe):
    out = run_script("run_throughput.py", "--tree", str(ROOT), "--recipe", str(tiny_recipe), "--rounds", "1",
                     "--epochs", "2", tmp_path=tmp_path)
    assert "training clips/s" in out


@pytest.mark.slow  # trains two teachers and two students: .ci/run runs the slow smoke tests before the default suite
def test_dcase_t1_distillation(tmp_path):
    out = run_script("dcase_t1_distillation.py", "--out", str(tmp_path / "t1"), "--minutes", "1", "--epochs", "1",
                     "--teacher-epochs", "1", "--seeds", "1", "--finetune-epochs", "1", "--batch-size", "4",
                     "--teacher-a-channels", "8", "--teacher-b-channels", "8", "--timing-pairs", "1",
                     "--timing-epochs", "1", tmp_path=tmp_path)
    summary = json.loads((tmp_path / "t1" / "summary.json").read_text())
    accuracy = summary["accuracy"]
    assert len(accuracy) >= 2 and all(len(values) == 1 for values in accuracy.values())
    assert all(f"| {kind} |" in out for kind in accuracy)
    assert len(summary["cache_timing"]["time_ratio"]) == 1 and "cached distillation / label-only" in out
