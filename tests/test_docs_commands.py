"""The docs stay true to the code: every fenced ``jasc ...`` line of README.md, docs/*.md and recipes/README.md
parses against today's CLI (and its recipe validates, for recipe commands), every dotted ``jasc_core.`` name they
give imports, every ``jasc_core/...`` file they name exists, and docs/cli.md is what the app generates now."""

from __future__ import annotations

import functools
import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
#: docs/cli.md is left out: it is generated from the app, and its own test regenerates it.
DOCS = [ROOT / "README.md", ROOT / "recipes" / "README.md",
        *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md")]
FENCE = re.compile(r"^```(\w*)\s*$")
#: Placeholders the docs write in capitals (RECIPE, RUN_DIR, ...): parsed as values, never validated as files.
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
#: Recipe commands whose recipe argument is validated, with the options whose values are recipe overrides.
RECIPE_COMMANDS = {"run", "validate", "profile", "sweep", "info"}


def code_blocks(path: Path) -> list[list[tuple[int, str]]]:
    """The code blocks of a Markdown file (fenced, or indented by four spaces after a blank line) as logical lines
    (line number, text), continuation lines ending in a backslash joined. In ``text`` and ``console`` blocks, which
    mix commands with their output, only ``$ `` lines are commands; the others are dropped."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] | None = None
    fenced, prompts_only, previous = False, False, ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line.strip())
        if fence:
            fenced = not fenced
            prompts_only = fenced and fence[1] in {"text", "console"}
            current = [] if fenced else None
            if fenced:
                blocks.append(current)
        elif fenced or (line.startswith("    ") and (not previous.strip() or previous.startswith("    "))):
            if current is None:
                current = []
                blocks.append(current)
            text = line.strip()
            continued = bool(current) and current[-1][1].endswith("\\")
            if prompts_only and not continued and not text.startswith("$ "):
                previous = line
                continue
            text = text.removeprefix("$ ")
            if continued:
                current[-1] = (current[-1][0], current[-1][1][:-1].rstrip() + " " + text)
            else:
                current.append((number, text))
        else:
            current = None
        previous = line
    return blocks


ASSIGNMENT = re.compile(r'^([A-Z_][A-Z0-9_]*)="(.*)"$')


def fenced_commands() -> list[tuple[str, int, str]]:
    """(file, line number, command) for each ``jasc`` line of a code block; ``$NAME`` expanded where the block
    assigns ``NAME="..."``."""
    found = []
    for path in DOCS:
        for block in code_blocks(path):
            variables = {m[1]: m[2] for m in (ASSIGNMENT.match(text) for _, text in block) if m}
            for number, text in block:
                if text.startswith("jasc ") or text == "jasc":
                    for name, value in variables.items():
                        text = text.replace(f"${name}", value)
                    found.append((str(path.relative_to(ROOT)), number, text))
    return found


def words_of(command: str) -> list[str]:
    """The argument words of a documented command line: comments, pipes and redirections cut off, optional parts
    written ``[--opt VALUE]`` kept (the option must exist all the same)."""
    words = []
    for word in shlex.split(command, comments=True):  # `[--opt VALUE]`: the brackets go, a YAML list stays
        if word.startswith("[") and "=" not in word:
            word = word[1:]
        if word.endswith("]") and word.count("[") < word.count("]"):
            word = word[:-1]
        if word:
            words.append(word)
    for i, word in enumerate(words):
        if word in {"|", ">", ">>", "&&", ";", "2>&1"}:
            words = words[:i]
            break
        if word.endswith(";"):  # `... train.epochs=3; done`: the shell statement ends here
            words = [*words[:i], word[:-1]]
            break
    # `...` marks "more of the same"; `a|b` offers alternatives: the first stands for them all.
    return [w.split("|")[0] if "|" in w and not w.startswith("-") else w for w in words[1:] if w != "..."]


def with_sample_values(command: Any, words: list[str]) -> list[str]:
    """Placeholder values of options (``--seconds S``) replaced by ``1``, which every option type parses, so that
    the rest of the line is checked too."""
    valued = {opt for param in command.params if param.param_type_name == "option" and not param.is_flag
              for opt in param.opts}
    return [("1" if i and words[i - 1] in valued and PLACEHOLDER.match(word) else word) for i, word in enumerate(words)]


COMMANDS = fenced_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 40 and any(c.startswith("jasc run recipes/quickstart.yaml") for _, _, c in COMMANDS)


@functools.cache
def jasc_group() -> Any:
    """The click group of the ``jasc`` app (typer's click objects, used by duck typing: typer may vendor click)."""
    from jasc_core.cli import build_app

    return typer.main.get_command(build_app())


@pytest.mark.parametrize(("where", "line", "command"), COMMANDS, ids=[f"{w}:{n}" for w, n, _ in COMMANDS])
def test_documented_command_parses_and_its_recipe_validates(where, line, command):
    words = words_of(command)
    group = jasc_group()
    if words[:1] and words[0].startswith("-"):  # an option of `jasc` itself (--version, --help)
        known = {opt for param in group.params for opt in param.opts} | {"--help"}
        assert words[0] in known, f"{where}:{line}: `jasc {words[0]}` is not an option"
        return
    # Walk the group tree: each word that names a subcommand goes one level down.
    command_obj, path, rest = group, [], list(words)
    while hasattr(command_obj, "commands") and rest and not rest[0].startswith("-"):
        sub = command_obj.commands.get(rest[0])
        assert sub is not None, f"{where}:{line}: `jasc {' '.join(path + rest[:1])}` is not a command"
        command_obj, path, rest = sub, [*path, rest[0]], rest[1:]
    if "--help" in rest:
        return
    try:
        ctx = command_obj.make_context(" ".join(["jasc", *path]), with_sample_values(command_obj, rest))
    except Exception as exc:  # click's UsageError (vendored by typer or not) and its subclasses
        if not hasattr(exc, "format_message"):
            raise
        pytest.fail(f"{where}:{line}: `{command}`: {exc.format_message()}")
    if path and path[-1] in RECIPE_COMMANDS:
        validate_recipe_of(where, line, path[-1], ctx.params)


def validate_recipe_of(where: str, line: int, name: str, params: dict) -> None:
    from jasc_core.recipes.model import BaseRecipeError, load_recipe

    recipe = str(params.get("recipe") or params.get("target") or "")
    if PLACEHOLDER.match(recipe) or "$" in recipe or not recipe.endswith((".yaml", ".yml")):
        return
    path = ROOT / recipe
    assert path.is_file(), f"{where}:{line}: no recipe {recipe}"
    sets = [s for s in (params.get("set_") or [])  # placeholders and shell variables are not values to validate
            if "$" not in s and not any(PLACEHOLDER.match(w) for w in re.split(r"[=.,]", s))]
    axes = [axis.partition("=") for axis in params.get("grid") or []]
    for key, _, values in axes or [("", "", "")]:
        for value in values.split(",") if key else [None]:
            try:
                load_recipe(path, [*sets, *([f"{key}={value}"] if key else [])])
            except BaseRecipeError:  # `jasc validate BASE` says what a base is and exits 0; other commands refuse it
                assert name == "validate" and not params.get("print_"), f"{where}:{line}: {recipe} is a base recipe"


DOTTED = re.compile(r"\bjasc_core(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
SLASHED = re.compile(r"\bjasc_core/[A-Za-z0-9_/]+\.py\b")


def named(pattern: re.Pattern) -> list[tuple[str, str]]:
    return sorted({(str(path.relative_to(ROOT)), match) for path in DOCS
                   for match in pattern.findall(path.read_text(encoding="utf-8"))})


@pytest.mark.parametrize(("where", "name"), named(DOTTED), ids=lambda x: x)
def test_every_dotted_jasc_core_name_in_the_docs_imports(where, name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            assert hasattr(target, attribute), f"{where}: {name}: {'.'.join(parts[:cut])} has no {attribute}"
            target = getattr(target, attribute)
        return
    pytest.fail(f"{where}: {name} does not import")


@pytest.mark.parametrize(("where", "name"), named(SLASHED), ids=lambda x: x)
def test_every_jasc_core_file_named_in_the_docs_exists(where, name):
    assert (ROOT / name).is_file(), f"{where}: {name} does not exist"


def test_docs_cli_md_is_what_the_app_generates():
    from jasc_core.cli.reference import cli_reference

    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == cli_reference(), "docs/cli.md is stale: python -m jasc_core.cli.reference docs/cli.md"
