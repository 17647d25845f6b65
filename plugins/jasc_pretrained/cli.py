"""``jasc weights list`` and ``jasc weights download NAME``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jasc_core.api import output_console

weights_app = typer.Typer(help="Pretrained encoder weights: list the published checkpoints, download one.",
                          no_args_is_help=True)
console = output_console()


@weights_app.command("list")
def list_(
    home: Annotated[Path | None, typer.Option("--home", help="Weights home; default $JASC_WEIGHTS, else "
                                              "jasc-weights beside the data home.")] = None,
) -> None:
    """The checkpoints `jasc weights download` knows, the encoder settings they need, and which are present."""
    from jasc_pretrained.weights import CHECKPOINTS, is_downloaded, record_path, weights_home

    folder = home or weights_home()
    table = Table(title=f"pretrained weights (weights home {folder}, or $JASC_WEIGHTS)", title_justify="left")
    for column in ("name", "encoder", "needs", "present", "sha256", "description"):
        table.add_column(column)
    for entry in CHECKPOINTS.values():
        present = is_downloaded(entry, folder)
        digest = json.loads(record_path(entry, folder).read_text())["sha256"][:12] + "…" if present else ""
        needs = ", ".join(f"{k}: {v}" for k, v in entry.config.items())
        table.add_row(entry.name, entry.encoder, needs, "yes" if present else "no",
                      digest or ("published" if entry.sha256 else "recorded at download"), entry.description)
    console.print(table)


@weights_app.command("download")
def download(
    name: Annotated[str, typer.Argument(help="Checkpoint name (see `jasc weights list`).")],
    url: Annotated[str | None, typer.Option("--url", help="Fetch from this mirror instead of the published "
                                            "location (the file is checked the same way).")] = None,
    home: Annotated[Path | None, typer.Option("--home", help="Weights home; default $JASC_WEIGHTS, else "
                                              "jasc-weights beside the data home.")] = None,
) -> None:
    """Fetch a published checkpoint into the weights home; record its SHA-256 (or check the published one)."""
    from jasc_pretrained.weights import checkpoint, record_path, weights_home
    from jasc_pretrained.weights import download as fetch

    entry = checkpoint(name)
    folder = home or weights_home()
    path = fetch(name, url=url, home=folder, progress=console.is_terminal)
    record = json.loads(record_path(entry, folder).read_text())
    how = "matches the published hash" if record["sha256_published"] else "recorded; checked at every later load"
    print(f"{name}: {path} ({record['bytes']} bytes), sha256 {record['sha256']} ({how})")
    print(f"use it with model.encoder: {{name: {entry.encoder}, weights: {name}"
          + "".join(f", {k}: {v}" for k, v in entry.config.items()) + "}")
