"""`jasc data synth` killed with SIGKILL: its hidden temporary folder is removed by the next synthesis (issue 16
item 9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_process import jasc_command

from jasc_datasets.synthesis.writer import _host, remove_stale_temporaries

SYNTH = ["data", "synth", "--preset", "tut-joint", "--sample-rate", "8000"]


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped), so no process has it for now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and pid checks are POSIX")
def test_next_synth_removes_the_folder_of_a_synth_killed_with_sigkill(tmp_path: Path) -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    big = subprocess.Popen([*jasc_command(), *SYNTH, "--minutes", "600", "--out", str(tmp_path / "big")], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    leftovers: list[Path] = []
    while not leftovers and time.time() < deadline and big.poll() is None:
        leftovers = [p for p in tmp_path.glob(".big.tmp-*") if any(p.rglob("*.wav"))]
        time.sleep(0.05)
    big.send_signal(signal.SIGKILL)
    big.wait()
    assert leftovers and all(p.is_dir() for p in leftovers), "the synthesis never started writing"
    assert not (tmp_path / "big").exists()

    # Another process's folder that is still being written, and one of another machine, must survive.
    alive = tmp_path / f".other.tmp-{os.getpid()}-0123abcd@{_host()}"
    elsewhere = tmp_path / f".other.tmp-{_dead_pid()}-0123abcd@not-{_host()}"
    for folder in (alive, elsewhere):
        folder.mkdir()

    small = subprocess.run([*jasc_command(), *SYNTH, "--minutes", "0.2", "--out", str(tmp_path / "small")], env=env,
                           capture_output=True, text=True, timeout=120)
    assert small.returncode == 0, small.stderr
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, elsewhere.name, "small"])


def test_folders_without_host_are_judged_by_pid_and_other_names_are_left_alone(tmp_path: Path) -> None:
    dead = tmp_path / f".data.tmp-{_dead_pid()}-deadbeef"
    live = tmp_path / f".data.tmp-{os.getpid()}-deadbeef"
    unrelated = [tmp_path / ".data.tmp-12-notes", tmp_path / "data.tmp-1-deadbeef"]
    for folder in (dead, live, *unrelated):
        folder.mkdir()
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, *unrelated))


def test_a_dataset_finished_by_another_process_meanwhile_is_kept_not_replaced(tmp_path: Path) -> None:
    # Two parallel sweep runs synthesise the same cached dataset; the slower one used to delete the folder the
    # faster one was already reading (its clips then went missing: "audio file not found").
    import json

    from jasc_datasets.synthesis.writer import MANIFEST, materialize

    out = tmp_path / "ds"
    key = {"preset": "toy", "seed": 0}

    def other_process_finishes_first(folder: Path, _progress) -> dict:
        out.mkdir()
        (out / "theirs.wav").write_bytes(b"in use")
        (out / MANIFEST).write_text(json.dumps({"format": "jasc-synthetic", "key": key, "complete": True}))
        (folder / "ours.wav").write_bytes(b"same content")
        return {}

    assert materialize(out, key, other_process_finishes_first) == (out, False)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "theirs.wav"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # our temporary folder is gone
