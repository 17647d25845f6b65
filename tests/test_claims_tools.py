"""tools/claims_*.py and recipes/claims/ (issue 27's step-matched comparisons): the recipe and its supervised arms
validate, and the tables state mean ± std and the steps per task that run.json recorded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jasc_core.recipes.model import load_recipe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import claims_collect  # noqa: E402
import claims_tables  # noqa: E402

ARMS = {"mean_teacher": [], "strong_only": ["schedule.max_weight=0", "train.streams=[strong]"],
        "strong_weak": ["schedule.max_weight=0", "train.streams=[strong,weak]"]}


@pytest.mark.parametrize("arm", ARMS)
def test_the_cpu_mean_teacher_recipe_and_its_supervised_arms_validate(arm):
    recipe = load_recipe(ROOT / "recipes" / "claims" / "mean_teacher_cpu.yaml", ARMS[arm])
    assert recipe.train.steps_per_epoch * recipe.train.epochs == 1000
    assert recipe.schedule.decay == 0.999 and recipe.train.stream_batch_sizes["strong"] == 12


def _run(root: Path, sweep: str, seed: int, accuracy: float, steps: dict) -> None:
    run = root / sweep / "runs" / f"seed={seed}"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "finished", "steps": steps}))
    (run / "history.json").write_text(json.dumps([{"epoch": 1, "step": steps["total"], "time": 2.0, "phase": "x",
                                                   "val": {"val/event/frame_micro_f1": 0.5 + seed / 10}}]))
    (run / "metrics.json").write_text(json.dumps({"eval": {"scene": {"accuracy": accuracy}}}))


def test_tables_give_mean_std_over_runs_and_the_steps_each_task_trained(tmp_path):
    freeze = {"total": 20, "tasks": {"event": 10, "scene": 10},
              "phases": {"event": {"steps": 10, "tasks": {"event": 10}}, "scene": {"steps": 10, "tasks": {"scene": 10}}}}
    for seed, accuracy in enumerate((0.40, 0.50, 0.60)):
        _run(tmp_path, "freeze_sed_asc", seed, accuracy, freeze)
    results = claims_collect.collect(tmp_path)
    assert [r["run"] for r in results["freeze_sed_asc"]] == ["seed=0", "seed=1", "seed=2"]
    row = claims_tables.table(results, ["freeze_sed_asc"], "eval")[2]
    assert row.startswith("| freeze_sed_asc | 3 | 10 event + 10 scene | 50.00 ± 10.00 | – |")
    assert claims_tables.curves(results, ["freeze_sed_asc"])[2] == "| freeze_sed_asc | 60.0 |"


@pytest.mark.parametrize("script", ["claims_sweeps.sh", "claims_table3_cpu.sh"])
def test_the_sweep_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(ROOT / "tools" / script)]).returncode == 0


def _cpu_table3_sweeps() -> tuple[list[str], dict[str, tuple[str, list[str]]]]:
    """The CPU Table 3 script's shared overrides and, per sweep, its recipe and own overrides (5 epochs of 100)."""
    text = (ROOT / "tools" / "claims_table3_cpu.sh").read_text()
    expand = {"$epochs": "5", "$two": "10", "$steps": "100"}

    def sets(fragment: str) -> list[str]:
        values = re.findall(r'--set (?:"([^"]+)"|([^\s)]+))', fragment)
        overrides = [quoted or bare for quoted, bare in values]
        for name, number in expand.items():
            overrides = [o.replace(name, number) for o in overrides]
        return overrides

    shared = sets(text[text.index("cpu_size=("):text.index("common=(")]) + ["train.steps_per_epoch=100"]
    sweeps = {m[1]: (m[2], sets(m[3])) for m in re.finditer(r"^sweep (\w+) (\S+) (.*)$", text, re.MULTILINE)}
    return shared, sweeps


def test_the_cpu_table3_arms_validate_and_give_each_task_the_same_steps():
    shared, sweeps = _cpu_table3_sweeps()
    assert sorted(sweeps) == sorted(claims_tables.TABLE3)
    for name, (recipe_path, overrides) in sweeps.items():
        recipe = load_recipe(ROOT / recipe_path, shared + overrides)
        assert recipe.features.n_mels == 32 and recipe.model.encoder.channels == [8, 16, 32], name
        joint = recipe.schedule.name == "soft"
        # SoftMTL trains both tasks every step; HardMTL 1:1 and FreezeMTL one task per step, for twice the epochs.
        assert recipe.train.epochs == (5 if joint else 10), name
        if recipe.schedule.name == "freeze":
            assert recipe.schedule.first_epochs == 5, name
