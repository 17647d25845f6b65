"""``docs/cli.md``: every command and option of the ``jasc`` app, written from the typer app itself so it cannot
drift (a test regenerates it and compares). Regenerate with ``python -m jasc_core.cli.reference docs/cli.md``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import typer

HEADER = """# Command-line reference

Generated from the `jasc` app by `python -m jasc_core.cli.reference docs/cli.md`; a test regenerates it and fails
on any difference, so edit the help texts in the code, not this file. `jasc COMMAND --help` prints the same.
"""


def cli_reference(app: typer.Typer | None = None) -> str:
    """The Markdown reference of ``app`` (default: the ``jasc`` app with every built-in plugin's commands)."""
    if app is None:
        from jasc_core.cli import build_app

        app = build_app()
    root = typer.main.get_command(app)
    lines = [HEADER]
    _command(root, ["jasc"], lines)
    return "\n".join(lines).rstrip() + "\n"


def _command(command: Any, path: list[str], lines: list[str]) -> None:
    # Duck-typed click objects: typer builds them with click, or with the copy of click it vendors (typer >= 0.20).
    ctx = command.make_context(" ".join(path), [], resilient_parsing=True)
    heading = "#" * min(len(path) + 1, 4)
    lines.append(f"{heading} `{' '.join(path)}`\n")
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines.append(f"```text\n{' '.join(path)} {usage}\n```\n")
    if command.help:
        lines.append(_help_text(command.help) + "\n")
    rows = [_param_row(param, ctx) for param in command.get_params(ctx) if not getattr(param, "hidden", False)]
    rows = [row for row in rows if row is not None]
    if rows:
        lines.append("| argument / option | help | default |\n|---|---|---|")
        lines.extend(rows)
        lines.append("")
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            _command(sub, [*path, name], lines)


def _help_text(text: str) -> str:
    # click's \b (no rewrap) markers and the trailing blank lines of docstrings are not Markdown.
    return "\n".join(line.rstrip() for line in text.replace("\b", "").strip().splitlines())


def _param_row(param: Any, ctx: Any) -> str | None:
    record = param.get_help_record(ctx)
    if record is None or param.name == "help":
        return None
    names, help_text = record
    help_text = re.sub(r"\s*\[(required|default: [^\]]*)\]", "", help_text or "").strip()  # the default column says it
    if getattr(param, "multiple", False):
        names += " (repeatable)"
    default = param.default
    if param.required:
        default_text = "required"
    elif callable(default) or default is None or default == () or default is False:
        default_text = ""
    else:
        default_text = f"`{default}`"
    return f"| `{_cell(names)}` | {_cell(help_text)} | {default_text} |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> None:
    """Write the reference to the file named in ``argv`` (stdout without one)."""
    args = sys.argv[1:] if argv is None else argv
    text = cli_reference()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":  # pragma: no cover
    main()
