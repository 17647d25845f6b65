"""Shared fixtures: recipe files and a registry with tiny test components."""

from __future__ import annotations

import os

# Progress bars and colour codes make CLI output hard to assert on; tests read plain text.
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("COLUMNS", "200")


import pytest  # noqa: E402


@pytest.fixture
def fakes(jasc_registry):
    """The installed plugins plus ``engine_fakes`` (tiny data, features, model, schedules) as plugin 'engine_fakes'."""
    import engine_fakes

    jasc_registry.add_plugin(engine_fakes, "engine_fakes")
    return jasc_registry


@pytest.fixture
def toy_registry(jasc_registry):
    """The installed plugins plus ``core_components`` (one tiny component per kind) as plugin 'toy'."""
    import core_components

    jasc_registry.add_plugin(core_components, "toy")
    return jasc_registry


@pytest.fixture
def toy_recipe(tmp_path):
    """A valid recipe file that uses only the toy components."""
    import core_components

    path = tmp_path / "toy.yaml"
    path.write_text(core_components.TOY_RECIPE)
    return path


@pytest.fixture
def cli(capsys):
    """Run ``jasc`` in-process the way the console script does; returns (exit code, stdout, stderr)."""
    from jasc_core.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run
