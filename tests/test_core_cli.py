"""The CLI as a user meets it: listings, show, validate, schema, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("jasc ")


def test_list_plugins_json_shows_origin(cli, toy_registry):
    code, out, _ = cli("list-plugins", "--json")
    assert code == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)["components"]}
    assert rows[("weighting", "toy_weighting")]["plugin"] == "toy"
    builtin = rows[("encoder", "tonami_cnn")]
    assert (builtin["plugin"], builtin["distribution"], builtin["status"]) == ("tonami", "jasc", "ok")
    assert builtin["description"]


def test_list_plugins_by_kind_table(cli, toy_registry):
    code, out, _ = cli("list-plugins", "--kind", "weighting")
    assert code == 0 and "toy_weighting" in out and "toy_encoder" not in out


def test_show_component(cli, toy_registry):
    code, out, _ = cli("show", "weighting", "toy_weighting")
    assert code == 0
    assert "Toy weighting with a scale." in out and "scale" in out and "multiplies the summed losses" in out


def test_show_unknown(cli, toy_registry):
    code, _, err = cli("show", "weighting", "toy_weightin")
    assert code == 2 and "did you mean 'toy_weighting'?" in err and "Traceback" not in err


def test_validate_ok_and_bad(cli, toy_registry, toy_recipe):
    code, out, _ = cli("validate", str(toy_recipe))
    assert code == 0 and "ok" in out
    code, _, err = cli("validate", str(toy_recipe), "--set", "train.epochs=-1")
    assert code == 2 and "train.epochs" in err and "(from --set train.epochs)" in err


def test_schema_is_json(cli, toy_registry):
    code, out, _ = cli("schema")
    assert code == 0 and json.loads(out)["title"] == "jasc recipe"


def test_real_console_script_errors_have_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {name: nothing_like_this}\n")
    for args in (["validate", str(bad)], ["validate", str(tmp_path / "missing.yaml")], ["run", str(bad)]):
        result = subprocess.run([sys.executable, "-m", "jasc_core.cli", *args], capture_output=True, text=True)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr and "error:" in result.stderr, result.stderr
