"""Output meant for people, read through a pipe as scripts and pagers read it (issue 16 item 11)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_process import jasc_command, jasc_env, run_jasc

from jasc_core.cli import config_fields, constraint_text

NO_COLUMNS = {"COLUMNS": None}  # the suite sets COLUMNS=200; a pipe in real life has none


def test_tables_are_not_squeezed_to_80_columns_in_a_pipe():
    result = run_jasc("list-plugins", env=NO_COLUMNS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("Log mel-band energies, per-band standardised; torch.stft or nnAudio STFT backend." in line
               for line in lines), result.stdout[:2000]
    assert max(len(line) for line in lines) > 80


def test_columns_still_sets_the_width():
    result = run_jasc("list-plugins", env={"COLUMNS": "100"})
    assert result.returncode == 0 and max(len(line) for line in result.stdout.splitlines()) <= 100


def test_show_prints_constraints_as_people_write_them():
    result = run_jasc("show", "dataset", "synthetic", env=NO_COLUMNS)
    assert result.returncode == 0, result.stderr
    assert "minutes of audio to generate [> 0, ≤ 100000]" in result.stdout
    assert "[≥ 8000, ≤ 192000]" in result.stdout and "'tut-joint' | 'dcase-disjoint'" in result.stdout
    for internal in ("Ge(", "Gt(", "Le(", "Annotated", "Literal["):
        assert internal not in result.stdout


def test_constraint_and_type_names(jasc_registry):
    from pydantic import BaseModel, Field

    class Config(BaseModel):
        rate: float = Field(0.5, ge=0, lt=1, description="a rate")
        sizes: list[int] = Field(default_factory=list, min_length=1)
        pools: list[int] | None = None

    rows = config_fields(Config)
    assert rows["rate"]["help"] == "a rate [≥ 0, < 1]"
    assert rows["sizes"]["help"] == "[length ≥ 1]" and rows["pools"]["type"] == "list[int] | None"
    assert constraint_text([]) == ""
    tonami = config_fields(jasc_registry.info("encoder", "tonami_cnn").cls.Config)
    assert all("Gt(" not in row["type"] and "Annotated" not in row["type"] for row in tonami.values())


@pytest.fixture
def dataset_folder(tmp_path: Path) -> Path:
    """A joint-format dataset of one 12-s recording (two clips)."""
    sf.write(tmp_path / "a.wav", np.zeros(12_000, dtype=np.float32), 1000, subtype="PCM_16")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "train.tsv").write_text(
        "path\tscene_label\tevent_start_time\tevent_end_time\tevent_label\na.wav\thome\t1\t3\tcar\n")
    return tmp_path


@pytest.mark.parametrize("args", [("schema",), ("data", "info", "{dataset}")])  # click's echo; rich tables
def test_a_reader_that_stops_early_is_not_an_error(dataset_folder, args):
    # The pipe is closed before jasc writes anything, as `head` does once it has its lines.
    argv = [arg.format(dataset=dataset_folder) for arg in args]
    child = subprocess.Popen([*jasc_command(), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=jasc_env(NO_COLUMNS))
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, stderr
    assert stderr == ""


def test_head_of_data_info_in_a_pipefail_shell(dataset_folder):
    command = " ".join([*jasc_command(), "data", "info", str(dataset_folder)])
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -2"], capture_output=True, text=True,
                            env=jasc_env(NO_COLUMNS), timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert len(result.stdout.splitlines()) == 2


def _tables(event: dict) -> str:
    from rich.console import Console

    from jasc_core.evaluation.table import print_tables

    console = Console(record=True, width=300, file=open(os.devnull, "w"))  # noqa: SIM115
    print_tables("run", {"split": "eval", "n_clips": 3, "event": event}, console=console)
    return console.export_text()


DCASE = {"frame_micro_f1": 0.6, "segment_f1": {"micro": 0.5, "macro": 0.2},
         "collar_f1": {"micro": 0.3, "macro": 0.1, "per_class": {"car": 0.4, "fan": 0.0, "cutlery": 0.0}},
         "classes_without_reference": ["breathing"]}


def test_psds_footnote_says_why_psds_is_zero_next_to_a_good_frame_f1():
    text = _tables({**DCASE, "psds1": 0.0, "psds2": None, "psds2_error": "ValueError: no events"})
    assert "0.000" in text and "alpha_st = 1" in text
    assert "Here 2 of the 3 classes with reference events have collar-F1 0" in text
    assert "1 classes have no reference event in this split" in text
    assert "PSDS2 could not be computed: ValueError: no events" in text


def test_no_psds_footnote_without_psds():
    assert "alpha_st" not in _tables(dict(DCASE))
    assert "alpha_st" not in _tables({"frame_micro_f1": 0.6})
