"""Real-data datasets without ``root``: the downloaded folder when complete, else the synthetic stand-in."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from jasc_core import DataError, component
from jasc_core.recipes.model import build, load_recipe
from jasc_datasets import stand_in
from jasc_datasets.download import marker_path
from jasc_datasets.packages import packages_of

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture
def fresh_machine(monkeypatch, tmp_path):
    """An empty data home, an empty synthetic cache, and stand-ins of a few seconds of audio."""
    monkeypatch.setenv("JASC_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("JASC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(stand_in, "STAND_IN_MINUTES", {"tut-joint": 0.5, "dcase-disjoint": 0.4})
    monkeypatch.setattr(stand_in, "_said", set())
    return tmp_path


def test_main_recipe_prepares_the_tut_joint_stand_in_through_the_recipe(fresh_machine, caplog) -> None:
    recipe = load_recipe(RECIPES / "tonami_mfl.yaml", sets=["train.epochs=1"])
    assert recipe.data.root is None and recipe.data.require_real is False
    dataset = build("dataset", recipe.data)
    with caplog.at_level(logging.WARNING, logger="jasc_datasets"):
        dataset.prepare()
    lines = [r.getMessage() for r in caplog.records if "stand-in" in r.getMessage()]
    assert len(lines) == 1
    assert "jasc data download tut-joint" in lines[0] and "17.4 GB" in lines[0]
    assert str(fresh_machine / "data" / "tut-joint") in lines[0]
    assert dataset.stand_in.startswith("synthetic stand-in of tut-joint")
    assert dataset.splits() == ["train", "val", "eval"]
    clips = dataset.load("train")
    assert len(clips.scene_labels) == 4 and len(clips.event_labels) == 25 and clips.clips
    wave = dataset.audio(clips.clips[0], 16000)
    assert wave.shape == (160000,)
    # Built a second time (evaluation does): served again, and the line is not repeated.
    caplog.clear()
    again = build("dataset", recipe.data)
    with caplog.at_level(logging.WARNING, logger="jasc_datasets"):
        again.prepare()
    assert again.stand_in == dataset.stand_in and not [r for r in caplog.records if "stand-in" in r.getMessage()]


@pytest.mark.parametrize(("name", "block", "command"), [
    ("joint", {}, "jasc data download tut-joint"),
    ("tau", {}, "jasc data download tau-2022-mobile"),
    ("desed", {}, "jasc data download desed"),
    ("disjoint", {}, "jasc data download tau-2022-mobile"),
    ("disjoint", {"tau": {"require_real": True}}, "jasc data download desed"),
])
def test_require_real_turns_the_fallback_into_an_error_naming_the_command(fresh_machine, name, block, command) -> None:
    if "tau" not in block:
        block = {**block, "require_real": True}
    with pytest.raises(DataError, match=command):
        component("dataset", name)(block).prepare()
    assert not (fresh_machine / "cache").exists()  # nothing generated


@pytest.mark.parametrize(("name", "task"), [("tau", "scene"), ("desed", "event"), ("disjoint", "both")])
def test_dcase_datasets_serve_their_part_of_the_disjoint_stand_in(fresh_machine, name, task) -> None:
    dataset = component("dataset", name)({})
    dataset.prepare()
    assert dataset.stand_in.startswith("synthetic stand-in of dcase-disjoint")
    clips = dataset.load("train").clips
    scenes = [c for c in clips if c.scene is not None]
    events = [c for c in clips if c.scene is None]
    assert (bool(scenes), bool(events)) == {"scene": (True, False), "event": (False, True), "both": (True, True)}[task]


def test_a_given_root_is_never_replaced_by_the_stand_in(fresh_machine) -> None:
    dataset = component("dataset", "joint")({"root": str(fresh_machine / "nope")})
    with pytest.raises(DataError, match="does not exist"):
        dataset.prepare()
    assert dataset.stand_in is None


def test_a_partial_download_still_counts_as_missing(fresh_machine) -> None:
    root = fresh_machine / "data" / "tut-joint"
    rows = packages_of("tut-joint")
    for row in rows[:-1]:  # every marker but one
        marker_path(root, row).parent.mkdir(parents=True, exist_ok=True)
        marker_path(root, row).write_text("{}")
    reason = stand_in.missing_download("tut-joint", None)
    assert reason and "(1 of 22 files missing)" in reason and "154.4 KB" in reason
    marker_path(root, rows[-1]).write_text("{}")
    assert stand_in.missing_download("tut-joint", None) is None


def test_data_info_of_the_main_recipe_says_it_reads_the_stand_in(fresh_machine) -> None:
    from typer.testing import CliRunner

    from jasc_datasets.cli import data_app

    result = CliRunner().invoke(data_app, ["info", str(RECIPES / "tonami_mfl.yaml")])
    assert result.exit_code == 0, result.output
    assert "synthetic stand-in of tut-joint" in result.output and "not the real data" in result.output


def test_a_complete_desed_download_is_read_in_its_own_layout(fresh_machine) -> None:
    import numpy as np
    import soundfile as sf

    root = fresh_machine / "data" / "desed"
    tsv = "filename\tonset\toffset\tevent_label\n"
    layout = {
        "dcase_synth/audio/train/synthetic21_train/soundscapes": "dcase_synth/metadata/train/synthetic21_train/soundscapes.tsv",
        "dcase_synth/audio/validation/synthetic21_validation/soundscapes":
            "dcase_synth/metadata/validation/synthetic21_validation/soundscapes.tsv",
        "dataset/audio/eval/public": "dataset/metadata/eval/public.tsv",
    }
    for index, (audio, meta) in enumerate(layout.items()):
        (root / audio).mkdir(parents=True)
        sf.write(root / audio / f"c{index}.wav", np.zeros(8000, dtype=np.float32), 8000)
        (root / meta).parent.mkdir(parents=True, exist_ok=True)
        (root / meta).write_text(tsv + f"c{index}.wav\t0.5\t0.8\tDog\n")
    for row in packages_of("desed"):
        marker_path(root, row).parent.mkdir(parents=True, exist_ok=True)
        marker_path(root, row).write_text("{}")
    dataset = component("dataset", "desed")({})
    dataset.prepare()
    assert dataset.stand_in is None and dataset.splits() == ["train", "val", "eval"]
    assert [c.clip_id for c in dataset.load("eval").clips] == ["c2"]
    assert dataset.load("train").clips[0].events[0].label == "Dog"


def test_require_real_on_the_command_line_exits_2_with_the_download_command(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("JASC_DATA", str(tmp_path / "empty-home"))
    monkeypatch.setenv("JASC_CACHE", str(tmp_path / "cache"))
    recipes = Path(__file__).resolve().parents[1] / "recipes"
    code, _, err = cli("run", str(recipes / "tonami_mfl.yaml"), "--require-real", "--out", str(tmp_path / "run"))
    assert code == 2 and "jasc data download tut-joint" in err, err
    assert not (tmp_path / "run").exists()
    code, _, err = cli("run", str(recipes / "quickstart.yaml"), "--require-real", "--out", str(tmp_path / "q"))
    assert code == 2 and "--require-real: the recipe's data is not a real dataset" in err, err


def test_the_disjoint_stand_in_cuts_its_scene_clips_to_tau_subset(fresh_machine, monkeypatch) -> None:
    # Enough clips that some (device, scene) cells hold more than the one clip a subset keeps of each.
    monkeypatch.setattr(stand_in, "STAND_IN_MINUTES", {"dcase-disjoint": 3.0})
    whole = component("dataset", "disjoint")({})
    whole.prepare()
    cut = component("dataset", "disjoint")({"tau": {"subset": 25}})
    cut.prepare()
    tau = component("dataset", "tau")({"subset": 25})
    tau.prepare()
    all_clips, kept = whole.load("train").clips, cut.load("train").clips
    scene_ids = {c.clip_id for c in kept if c.scene is not None}
    # The scene clips are the tau dataset's subset of the same stand-in; every event clip stays.
    assert scene_ids == {c.clip_id for c in tau.load("train").clips}
    assert len(scene_ids) < len([c for c in all_clips if c.scene is not None])
    assert [c.clip_id for c in kept if c.scene is None] == [c.clip_id for c in all_clips if c.scene is None]
    assert [c.clip_id for c in cut.load("eval").clips] == [c.clip_id for c in whole.load("eval").clips]
