"""Recipe files: YAML read safely (duplicate keys are errors), ``extends`` chains merged, ``--set`` overrides applied.

One override rule for both layers (``extends`` and ``--set``): a block merges field by field, except that changing a
component's ``name`` starts the block from the new component's defaults, keeping only the fields the overriding
layer itself sets (the old fields belong to another component's ``Config``). Each switch that drops fields says so
in one warning line naming them.

What comes out is plain data; ``jasc_core.recipes.model`` validates it against the installed components.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from pathlib import Path

import yaml

from jasc_core.contract.json_types import JSONMapping, JSONObject, JSONValue
from jasc_core.errors import ConfigError

log = logging.getLogger("jasc")

# -- reading YAML --------------------------------------------------------------------------------------------------


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice; plain YAML loaders silently keep the last value."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (a typo'd recipe would train on the wrong
    value with no word said)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: dict[object, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merge keys may repeat by design
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: construct_mapping below reports it as usual
                continue
            if first is not None:
                raise DuplicateKeyError(
                    problem=f"duplicate key '{key}' (first given at line {first.start_mark.line + 1})",
                    problem_mark=key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def safe_load_unique(text: str) -> JSONValue:
    """``yaml.safe_load`` that raises ``DuplicateKeyError`` on a key repeated within one mapping."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass


def read_yaml(path: Path) -> JSONObject:
    """One recipe file as a mapping, with errors that name the file."""
    if not path.exists():
        raise ConfigError(f"{path}: no such recipe file")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a recipe file")
    try:
        data = safe_load_unique(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    if data is None:
        raise ConfigError(f"{path}: the recipe is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of blocks (data, model, ...), got a {type(data).__name__}")
    return data


def deep_merge(base: JSONMapping, override: JSONMapping,
               dropped: list[str] | None = None, _path: tuple[str, ...] = ()) -> JSONObject:
    """``override`` on top of ``base``; mappings merge recursively, other values replace.

    A component block that switches to another component (its ``name`` differs) is the override's block alone:
    the base's fields belong to a different ``Config``. Each switch that drops fields appends a line naming them to
    ``dropped``.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if _switches_component(old, value):
                _note_switch(dropped, (*_path, str(key)), old, value, value)
                merged[key] = copy.deepcopy(value)
            else:
                merged[key] = deep_merge(old, value, dropped, (*_path, str(key)))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _switches_component(old: JSONMapping, new: JSONMapping) -> bool:
    return "name" in old and "name" in new and old["name"] != new["name"]


def _note_switch(dropped: list[str] | None, path: tuple[str, ...], old: JSONMapping, new: JSONMapping,
                 kept: JSONMapping) -> None:
    """One line naming the fields of ``old`` that a switch to ``new['name']`` drops (none: no line)."""
    lost = [field for field in old if field != "name" and field not in kept]
    if dropped is None or not lost:
        return
    values = ", ".join(f"{field}={old[field]!r}" for field in lost)
    dropped.append(f"{'.'.join(path)}: switching {old['name']} -> {new['name']} starts from {new['name']}'s "
                   f"defaults; not carried over: {values} (the overriding layer sets what it keeps)")


def load_raw(path: str | Path, _chain: tuple[Path, ...] = ()) -> JSONObject:
    """A recipe file with its ``extends`` chain merged in (not yet validated)."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, resolved))
        raise ConfigError(f"{path}: extends cycle: {cycle}")
    data = read_yaml(path)
    bases = data.pop("extends", None)
    dropped: list[str] = []
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: extends: expected a file path or a list of file paths")
    merged: JSONObject = {}
    for base in bases:
        base_path = path.parent / base
        if not base_path.exists():
            raise ConfigError(f"{path}: extends: no such file '{base}' (looked for {base_path})")
        if base_path.is_dir():
            raise ConfigError(f"{path}: extends: '{base}' is a folder ({base_path}), not a recipe file")
        merged = deep_merge(merged, load_raw(base_path, (*_chain, resolved)), dropped)
    merged = deep_merge(merged, data, dropped)
    for line in dropped:
        log.warning("%s: %s", path, line)
    return merged


# -- --set overrides -----------------------------------------------------------------------------------------------


def parse_set(expression: str) -> tuple[list[str], JSONValue]:
    """``"a.b=value"`` -> (["a", "b"], parsed value)."""
    path, sep, text = expression.partition("=")
    keys = path.strip().split(".")
    if not sep or not path.strip() or any(not key for key in keys):
        raise ConfigError(f"--set {expression}: expected PATH=VALUE, e.g. train.epochs=5")
    try:
        value = safe_load_unique(text) if text.strip() else None
    except DuplicateKeyError as exc:
        raise ConfigError(f"--set {expression}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {expression}: value is not a YAML scalar or flow mapping: {exc}") from None
    return keys, value


def apply_sets(data: JSONObject, sets: Iterable[str]) -> list[str]:
    """Apply overrides in order, under the rule of ``deep_merge``: a mapping value merges into the block it lands on,
    and a new ``name`` restarts its block from that component's defaults, keeping the fields an earlier ``--set``
    of this command line gave it. Returns the dotted paths that were set (for tagging their errors)."""
    paths: list[str] = []
    dropped: list[str] = []
    for expression in sets:
        keys, value = parse_set(expression)
        node = _parent_block(data, keys, expression)
        key, old = keys[-1], node.get(keys[-1])
        if key == "name" and "name" in node and node["name"] != value:
            prefix = ".".join(keys[:-1]) + "."
            kept = {field: node[field] for field in node
                    if any(p == prefix + field or p.startswith(prefix + field + ".") for p in paths)}
            _note_switch(dropped, tuple(keys[:-1]), node, {"name": value}, kept)
            node.clear()
            node.update({"name": value, **kept})
        elif isinstance(old, dict) and isinstance(value, dict):
            node[key] = deep_merge({key: old}, {key: value}, dropped, tuple(keys[:-1]))[key]
        else:
            node[key] = value
        paths.append(".".join(keys))
    for line in dropped:
        log.warning("--set: %s", line)
    return paths


def _parent_block(data: JSONObject, keys: list[str], expression: str) -> JSONObject:
    """The block that holds ``keys[-1]``, made where missing."""
    node: JSONObject = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise ConfigError(f"--set {expression}: '{where}' is {child!r}, not a block with fields")
        node = child
    return node
