"""The folder ``jasc data download tut-joint`` fills (meta/meta_development.txt, meta/meta_evaluation.txt) is read
by ``jasc data info`` and the ``joint`` dataset without ``splits``; a missing root is one problem, said once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from jasc_datasets.cli import data_app
from jasc_datasets.joint import Joint

runner = CliRunner()
HEADER = "path\tscene_label\tevent_start_time\tevent_end_time\tevent_label\n"


def downloaded_layout(root: Path) -> Path:
    """Two 10-s recordings named by the joint metadata files under the names the download gives them."""
    for rel in ("TUT-sound-events-2017-development/audio/street/a.wav",
                "TUT-sound-events-2017-evaluation/audio/street/b.wav"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, np.full(2000, 0.1, dtype=np.float32), 200, subtype="PCM_16")
    (root / "meta").mkdir()
    (root / "meta" / "meta_development.txt").write_text(
        HEADER + "TUT-sound-events-2017-development/audio/street/a.wav\tcity_center\t1.0\t2.0\tcar\n")
    (root / "meta" / "meta_evaluation.txt").write_text(
        HEADER + "TUT-sound-events-2017-evaluation/audio/street/b.wav\tresidential_area\t3.0\t4.0\tpeople walking\n")
    return root


def test_joint_reads_the_downloaded_layout_at_a_given_root_without_splits(tmp_path: Path) -> None:
    dataset = Joint({"root": str(downloaded_layout(tmp_path))})
    dataset.prepare()
    assert dataset.splits() == ["train", "eval"]
    train = dataset.load("train")
    assert train.scene_labels == ["city_center", "residential_area"] and len(train) == 1
    assert [e.label for e in train.clips[0].events] == ["car"]


def test_data_info_recognises_the_downloaded_layout(tmp_path: Path) -> None:
    result = runner.invoke(data_app, ["info", str(downloaded_layout(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kind"] == "joint" and list(report["splits"]) == ["train", "eval"] and not report["fatal"]


def test_half_a_download_is_no_known_layout(tmp_path: Path) -> None:
    downloaded_layout(tmp_path)
    (tmp_path / "meta" / "meta_evaluation.txt").unlink()
    result = runner.invoke(data_app, ["info", str(tmp_path)])
    assert result.exit_code != 0 and "meta/meta_development.txt + meta/meta_evaluation.txt" in str(result.exception)


def test_a_missing_root_is_reported_once(tmp_path: Path) -> None:
    recipe = Path(__file__).parents[1] / "recipes" / "quickstart.yaml"
    block = f"data={{name: joint, root: {tmp_path / 'nowhere'}}}"
    result = runner.invoke(data_app, ["info", str(recipe), "--json", "--set", block])
    assert result.exit_code == 2
    fatal = json.loads(result.output)["fatal"]
    assert len(fatal) == 1 and "does not exist" in fatal[0]


def test_a_real_data_recipe_without_its_download_names_the_download_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JASC_DATA", str(tmp_path / "empty"))
    recipe = Path(__file__).parents[1] / "recipes" / "cpmobile_asc_real.yaml"
    result = runner.invoke(data_app, ["info", str(recipe), "--json"])
    assert result.exit_code == 2
    fatal = json.loads(result.output)["fatal"]
    assert len(fatal) == 1 and "data.require_real is set" in fatal[0]
    assert "`jasc data download tau-2022-mobile`" in fatal[0]
