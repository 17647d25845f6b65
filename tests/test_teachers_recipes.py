"""The teacher recipes (003 Table 3's CrossSoftMTL and CrossHardMTL, DESED's mean-teacher CRNN) train end to end on
tiny synthetic dcase-disjoint data, record their teacher terms and save the teacher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jasc_core.runs.checkpoints import load_checkpoint

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
NARROW = ["model.encoder.channels=[4,4,4,4,4,4,8]", "model.heads.event.hidden_size=8"]
# Four minutes of audio: the least that gives the DESED-like part strong, weak and unlabelled training clips.
# CrossSoftMTL shares its code path with CrossHardMTL (tests/test_teachers.py covers both): slow, to keep the
# default suite short.
TEACHER_RECIPES = {
    "mt003_cross_soft.yaml": {"cross_scene", "cross_event"},
    "mt003_cross_hard.yaml": {"cross_scene", "cross_event"},
    "desed_crnn_sed_mean_teacher.yaml": {"consistency_frame", "consistency_clip"},
}


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synthetic-cache")


@pytest.mark.parametrize("recipe", [pytest.param(r, marks=pytest.mark.slow) if r == "mt003_cross_soft.yaml" else r
                                    for r in sorted(TEACHER_RECIPES)])
def test_teacher_recipe_trains_on_tiny_dcase_disjoint_and_saves_its_teacher(recipe, cli, data_cache, tmp_path):
    sets = [f"data.cache_dir={data_cache}", "data.minutes=4", "train.epochs=2", "train.batch_size=4",
            f"output.dir={tmp_path}", "output.name=run", "evaluate.plots=false", *NARROW]
    code, _, err = cli("run", str(RECIPES / recipe), *[arg for s in sets for arg in ("--set", s)])
    assert code == 0, err
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert all(set(entry["extra_losses"]) == TEACHER_RECIPES[recipe] for entry in history)
    assert set(load_checkpoint(run / "checkpoints" / "best.pt").extra_models) == {"teacher"}
    code, _, err = cli("evaluate", str(run), "--model", "teacher")
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["eval_teacher"]["model"] == "teacher"
