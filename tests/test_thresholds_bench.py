"""``jasc thresholds bench`` on tiny synthetic files, driven through a Typer app built here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from jasc_core.errors import DataError
from jasc_thresholds import jasc_register_commands
from jasc_thresholds.bench import load_bench_file


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:  # a callback keeps "thresholds" a sub-command even when it is the only group
        pass

    jasc_register_commands(root)
    return root


def write_bench(path, n_val=60, n_eval=40, classes=3, **override):
    rng = np.random.default_rng(0)
    arrays = {}
    for part, n in (("val", n_val), ("eval", n_eval)):
        targets = (rng.random((n, classes)) < 0.4).astype(np.float32)
        arrays[f"{part}_targets"] = targets
        arrays[f"{part}_scores"] = np.clip(0.6 * targets + rng.random((n, classes)) * 0.5, 0, 1).astype(np.float32)
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_bench_prints_every_method_as_json_and_table(app, tmp_path):
    path = write_bench(tmp_path / "tiny.npz")
    runner = CliRunner()
    result = runner.invoke(app, ["thresholds", "bench", str(path), "-m", "fixed", "-m", "coordinate", "--init", "0.3",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert [row["method"] for row in rows] == ["fixed", "coordinate"]
    assert rows[0]["thresholds"] == [0.3, 0.3, 0.3]
    arrays = np.load(path)
    decisions = arrays["eval_scores"] > 0.3
    tp = np.sum(decisions & (arrays["eval_targets"] > 0))
    expected = 100 * 2 * tp / (decisions.sum() + arrays["eval_targets"].sum())
    assert rows[0]["eval_micro_f1"] == pytest.approx(expected)
    assert rows[1]["val_f1"] >= rows[0]["val_f1"]
    assert all(row["seconds"] >= 0 for row in rows)

    table = runner.invoke(app, ["thresholds", "bench", str(path), "--metric", "macro", "-m", "sgl"])
    assert table.exit_code == 0, table.output
    assert "sgl" in table.output and "eval micro-F1" in table.output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"eval_targets": None}, "missing key 'eval_targets'"),
        ({"val_scores": np.zeros((60, 3, 2))}, "'val_scores' must be \\[clips, classes\\]"),
        ({"val_targets": np.zeros((59, 3))}, "'val_targets' has shape"),
        ({"eval_scores": np.zeros((40, 2)), "eval_targets": np.zeros((40, 2))}, "'eval_scores' has 2 classes"),
        ({"val_targets": np.full((60, 3), 0.5)}, "'val_targets' must hold only 0 and 1"),
        ({"val_scores": np.full((60, 3), np.nan)}, "'val_scores' holds NaN"),
    ],
)
def test_bad_files_raise_data_error_naming_file_and_key(tmp_path, override, message):
    path = write_bench(tmp_path / "bad.npz", **override)
    with pytest.raises(DataError, match=message) as info:
        load_bench_file(path)
    assert str(path) in str(info.value)


def test_not_an_npz_is_a_data_error(app, tmp_path):
    text = tmp_path / "scores.npz"
    text.write_text("val_scores,val_targets\n")
    with pytest.raises(DataError, match="scores.npz: not a readable .npz"):
        load_bench_file(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="not an .npz archive"):
        load_bench_file(single)
    with pytest.raises(DataError, match="no such file"):
        load_bench_file(tmp_path / "absent.npz")
    result = CliRunner().invoke(app, ["thresholds", "bench", str(text)])
    assert isinstance(result.exception, DataError)  # the real CLI prints it and exits with code 2


def test_bad_metric_is_a_config_error(app, tmp_path):
    from jasc_core.errors import ConfigError

    result = CliRunner().invoke(app, ["thresholds", "bench", str(write_bench(tmp_path / "t.npz")), "--metric", "f2"])
    assert isinstance(result.exception, ConfigError)
