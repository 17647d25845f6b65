"""The core's shape: layers visible in the folder names, each importing only the layers below it.

docs/architecture.md draws the same order. Function-level imports count too: an import moved into a function to dodge
a circle is still an upward import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "jasc_core"

#: Lowest first. A module may import its own layer and any layer before it in this list.
LAYERS = ("errors", "console", "contract", "recipes", "runs", "data", "model", "inference", "evaluation", "training",
          "sweeps", "cli")
#: Facades over the whole core (the public names, the Python API, the pytest plugin): they may import any layer.
FACADES = {"__init__", "api", "testing"}


def _layer(module: str) -> str:
    """``jasc_core.data.clips`` -> ``data``; ``jasc_core.errors`` -> ``errors``."""
    return module.split(".")[1]


def _core_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return {name for name in names if name.startswith("jasc_core.")}


def _modules() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(CORE.parent).with_suffix("").parts), p) for p in sorted(CORE.rglob("*.py"))]


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_each_module_imports_only_its_layer_and_the_layers_below(module: str, path: Path) -> None:
    layer = _layer(module) if module.count(".") >= 1 else "__init__"
    if layer in FACADES:
        return
    assert layer in LAYERS, f"{module}: a folder or top-level module that is not in the layer list {LAYERS}"
    rank = LAYERS.index(layer)
    upward = sorted(name for name in _core_imports(path) if _layer(name) not in FACADES
                    and LAYERS.index(_layer(name)) > rank)
    assert not upward, f"{module} ({layer}) imports upward: {upward}"


def test_no_core_module_is_over_400_lines() -> None:
    long = [f"{m} ({p.read_text(encoding='utf-8').count(chr(10))})" for m, p in _modules()
            if p.read_text(encoding="utf-8").count("\n") > 400]
    assert not long, f"modules over 400 lines: {long}"


def test_no_core_function_is_over_60_lines() -> None:
    long = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                long.append(f"{module}.{node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, f"functions over 60 lines: {long}"
