"""``jasc data synth`` and ``jasc data info``: output, JSON report, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from jasc_datasets.cli import data_app
from jasc_datasets.synthesis import tut_joint

runner = CliRunner()
HEADER = "path\tscene_label\tevent_start_time\tevent_end_time\tevent_label\n"


def test_synth_then_info_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    result = runner.invoke(data_app, ["synth", "--preset", "tut-joint", "--out", str(out), "--minutes", "0.5",
                                      "--seed", "1", "--sample-rate", "8000"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and (out / "manifest.json").exists()
    again = runner.invoke(data_app, ["synth", "--preset", "tut-joint", "--out", str(out), "--minutes", "0.5",
                                     "--seed", "1", "--sample-rate", "8000"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    result = runner.invoke(data_app, ["info", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kind"] == "joint" and list(report["splits"]) == ["train", "val", "eval"]
    assert report["scene_labels"] == list(tut_joint.SCENES) and not report["fatal"]
    allowed = {(p.label, p.scene) for p in tut_joint.load_stats()}
    for scene, events in report["cooccurrence"].items():
        assert all((label, scene) in allowed for label in events)
    tables = runner.invoke(data_app, ["info", str(out)])
    assert tables.exit_code == 0 and "co-occurrence" in tables.output and "no problem" in tables.output


def test_info_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    sf.write(tmp_path / "good.wav", np.zeros(12_000, dtype=np.float32), 1000, subtype="PCM_16")
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.tsv").write_text(
        HEADER + "good.wav\thome\t1\t3\tcar\ngood.wav\thome\t2\t4\tcar\ntext.wav\thome\t\t\t\nmissing.wav\thome\t\t\t\n")
    result = runner.invoke(data_app, ["info", str(tmp_path), "--json"])
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert len(report["fatal"]) == 2
    assert any("text.wav" in m and "not a readable audio file" in m for m in report["fatal"])
    assert any("missing.wav" in m and "not found" in m for m in report["fatal"])
    assert report["warnings"] == ["split train: merged overlaps: 1"]
    assert report["splits"]["train"]["clips"] == 2  # the good 12-s recording: two clips


def test_info_bad_annotation_exits_2(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.tsv").write_text(HEADER + "a.wav\thome\tx\t1\tcar\na.wav\thome\t3\t1\tcar\n")
    result = runner.invoke(data_app, ["info", str(tmp_path), "--json"])
    assert result.exit_code == 2
    fatal = json.loads(result.output)["fatal"]
    assert len(fatal) == 3 and "train.tsv:2" in fatal[0] and "train.tsv:3" in fatal[1]
    # Loading stops at the annotation problems; the audio they name is checked all the same.
    assert "a.wav" in fatal[2] and "not found" in fatal[2]


def test_info_on_unknown_folder_is_a_data_error(tmp_path: Path) -> None:
    result = runner.invoke(data_app, ["info", str(tmp_path)])
    assert result.exit_code != 0 and "no known layout" in str(result.exception)


def test_data_commands_are_registered() -> None:
    from jasc_core.cli import build_app

    result = runner.invoke(build_app(), ["data", "--help"])
    assert result.exit_code == 0 and "synth" in result.output and "info" in result.output


def test_info_on_a_recipe(tmp_path: Path) -> None:
    recipe = Path(__file__).parents[1] / "recipes" / "quickstart.yaml"
    sets = ["data.minutes=0.5", "data.sample_rate=8000", f"data.cache_dir={tmp_path}"]
    args = ["info", str(recipe), "--json"] + [x for s in sets for x in ("--set", s)]
    result = runner.invoke(data_app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kind"] == "synthetic" and sum(s["clips"] for s in report["splits"].values()) == 3
    assert (tmp_path / "synthetic").is_dir()


def test_info_warns_about_a_recording_much_shorter_than_its_clip(tmp_path: Path) -> None:
    from cli_process import run_jasc

    sf.write(tmp_path / "blip.wav", np.zeros(100, dtype=np.float32), 1000, subtype="PCM_16")  # 0.1 s
    sf.write(tmp_path / "half.wav", np.zeros(5_000, dtype=np.float32), 1000, subtype="PCM_16")  # 5 s: not short
    sf.write(tmp_path / "long.wav", np.zeros(12_000, dtype=np.float32), 1000, subtype="PCM_16")  # 2 clips, last 2 s
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.tsv").write_text(HEADER + "blip.wav\thome\t\t\t\nhalf.wav\thome\t\t\t\n"
                                                 "long.wav\thome\t\t\t\n")
    result = run_jasc("data", "info", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "split train: 1 recording(s) shorter than 50% of their clip" in text, result.stdout
    assert "blip.wav (0.10 s in a 10-s clip)" in text and "half.wav" not in text and "long.wav" not in text
    report = json.loads(run_jasc("data", "info", str(tmp_path), "--json").stdout)
    assert report["splits"]["train"]["notes"]["recordings_shorter_than_half_clip"] == 1
