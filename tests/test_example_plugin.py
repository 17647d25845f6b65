"""A third-party package written only against DESIGN.md's contract, installed next to jasc, and a broken one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jasc-geometric"


def jasc(*args: str, pythonpath: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": f"{pythonpath}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **env}
    return subprocess.run([sys.executable, "-m", "jasc_core.cli", *args], capture_output=True, text=True,
                          env=environment)


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """pip-install the example plugin into a folder on the path of the same interpreter (no build isolation: the
    environment's setuptools builds it, so no network is needed)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True)
    return target


def test_example_plugin_listed_and_usable(installed_example, tmp_path):
    listing = jasc("list-plugins", "--json", pythonpath=installed_example)
    assert listing.returncode == 0, listing.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listing.stdout)["components"]}
    row = rows[("weighting", "geometric")]
    assert (row["plugin"], row["distribution"], row["version"], row["status"]) == (
        "geometric", "jasc-geometric", "0.1.0", "ok")

    base = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"
    recipe = tmp_path / "geometric.yaml"
    recipe.write_text(f"extends: {base}\nweighting: {{name: geometric, eps: 1.0e-6}}\n")
    ok = jasc("validate", str(recipe), pythonpath=installed_example)
    assert ok.returncode == 0, ok.stderr
    bad = jasc("validate", str(recipe), "--set", "weighting.epz=1", pythonpath=installed_example)
    assert bad.returncode == 2 and "weighting.epz: extra field; did you mean 'eps'?" in bad.stderr


def test_example_plugin_blocked_by_env(installed_example):
    listing = jasc("list-plugins", "--json", pythonpath=installed_example, JASC_DISABLE_PLUGINS="geometric")
    plugins = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}
    assert plugins["geometric"]["status"] == "blocked"
    assert all(r["name"] != "geometric" for r in json.loads(listing.stdout)["components"])


def test_broken_plugin_listed_cli_keeps_working(tmp_path):
    """A distribution whose module raises on import: listed as broken with its error; other commands still work."""
    (tmp_path / "jasc_broken.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    dist = tmp_path / "jasc_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: jasc-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[jasc]\nbroken = jasc_broken\n")
    listing = jasc("list-plugins", "--json", pythonpath=tmp_path)
    assert listing.returncode == 0, listing.stderr
    plugin = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}["broken"]
    assert plugin["status"] == "broken" and "this plugin is broken on purpose" in plugin["error"]
    table = jasc("list-plugins", pythonpath=tmp_path)
    assert table.returncode == 0 and "tonami_cnn" in table.stdout and "broken" in table.stderr
    unknown = jasc("show", "weighting", "nope", pythonpath=tmp_path)
    assert unknown.returncode == 2 and "this plugin is broken on purpose" in unknown.stderr


EVENT_FIRST = Path(__file__).resolve().parents[1] / "examples" / "jasc-event-first"


def test_a_schedule_from_a_separate_package_installs_validates_and_trains(tmp_path):
    """`examples/jasc-event-first` uses only docs/plugins.md's contract: two phases, event alone then both."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(EVENT_FIRST)], check=True, capture_output=True)
    quickstart = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"
    sets = ["schedule={name: event_first, event_epochs: 1}", "train.epochs=2", "data.minutes=1.5",
            "evaluate.plots=false", "model.encoder.channels=[8, 8, 8]", "model.heads.scene.channels=[8, 8]"]
    args = [arg for expression in sets for arg in ("--set", expression)]
    assert jasc("validate", str(quickstart), *args, pythonpath=site).returncode == 0
    done = jasc("run", str(quickstart), *args, "--out", str(tmp_path / "run"), pythonpath=site,
                JASC_CACHE=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [record["phase"] for record in history] == ["event", "joint"]
    assert list(history[0]["train_losses"]) == ["event"]
    assert sorted(history[1]["train_losses"]) == ["event", "scene"]
