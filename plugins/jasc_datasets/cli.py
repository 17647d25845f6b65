"""``jasc data synth``, ``jasc data info``, ``jasc data download`` and ``jasc data list``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jasc_core.api import output_console
from jasc_datasets.synthesis.presets import PRESET_NAMES

data_app = typer.Typer(help="Datasets: download the papers' real data, list what is present, synthesize soundscapes, "
                       "inspect a dataset.",
                       no_args_is_help=True)
console = output_console()


@data_app.command("synth")
def synth(
    preset: Annotated[str, typer.Option("--preset", "-p", help=f"Preset: {', '.join(PRESET_NAMES)}.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to create (written atomically).")],
    minutes: Annotated[float, typer.Option("--minutes", "-m", min=0.01, help="Minutes of audio.")] = 20.0,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Random seed (same seed: identical files).")] = 0,
    sample_rate: Annotated[int, typer.Option("--sample-rate", min=8000, help="Sample rate in Hz.")] = 44100,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing folder at --out.")] = False,
) -> None:
    """Generate a synthetic dataset (deterministic, atomic); `jasc data info OUT` reads it back."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from jasc_datasets.synthetic import synthesize

    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} clips"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"{preset}", total=None)
        folder, generated = synthesize(preset, out, minutes, seed, sample_rate, force=force,
                                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    seconds = time.perf_counter() - start
    if generated:
        console.print(f"wrote {folder} ({minutes:g} min of audio in {seconds:.1f} s, "
                      f"{minutes * 60 / max(seconds, 1e-9):.0f}x real time)", highlight=False)
    else:
        console.print(f"{folder} is already complete with these settings; nothing to do", highlight=False)


@data_app.command("info")
def info(
    target: Annotated[str, typer.Argument(help="Dataset folder, or a recipe YAML (its data block).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a recipe field: PATH=VALUE; repeatable.")
    ] = None,
) -> None:
    """Clips and minutes per split, label counts, scene/event co-occurrence and every problem found.

    Exits with code 2 when a problem would stop training (unreadable audio, bad annotations, missing split).
    """
    from jasc_datasets.info import dataset_for_folder, inspect

    path = Path(target)
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        from jasc_core.api import build, load_recipe

        recipe = load_recipe(path, sets=set_ or ())
        block = recipe.data.model_dump()
        strict = not block.get("skip_bad_files", False)
        if "skip_bad_files" in block:
            block["skip_bad_files"] = True  # find every bad file, then judge by the recipe's own setting
        report = inspect(build("dataset", block), str(path), skipping_is_fatal=strict)
    else:
        report = inspect(dataset_for_folder(target), target)
    if as_json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        show(report)
    if report.fatal:
        raise typer.Exit(2)


def show(report) -> None:
    """The report as rich tables."""
    splits = Table(title=f"{report.source} ({report.kind})", title_justify="left")
    for column in ("split", "clips", "minutes", "recordings", "scene-labelled", "event-labelled", "weak", "events"):
        splits.add_column(column, justify="left" if column == "split" else "right")
    for s in report.splits:
        splits.add_row(s.name, str(s.clips), f"{s.minutes:.1f}", str(s.recordings), str(s.scene_clips),
                       str(s.event_clips), str(s.weak_clips), str(sum(s.events.values())))
    console.print(splits)
    names = [s.name for s in report.splits]
    if report.scene_labels:
        table = Table(title="scene labels (clips)", title_justify="left")
        table.add_column("scene")
        for name in names:
            table.add_column(name, justify="right")
        for label in report.scene_labels:
            table.add_row(label, *[str(s.scenes.get(label, 0)) for s in report.splits])
        console.print(table)
    if report.event_labels:
        table = Table(title="event labels (events per clip, seconds; weak: clips)", title_justify="left")
        table.add_column("event")
        for name in names:
            table.add_column(name, justify="right")
        for label in report.event_labels:
            cells = []
            for s in report.splits:
                cell = f"{s.events.get(label, 0)} / {s.event_seconds.get(label, 0.0):.0f} s"
                if s.weak_clips:
                    cell += f" / weak {s.weak.get(label, 0)}"
                cells.append(cell)
            table.add_row(label, *cells)
        console.print(table)
    if report.cooccurrence:
        scenes = [s for s in report.scene_labels if s in report.cooccurrence]
        table = Table(title="co-occurrence (clips of a scene with the event, all splits)", title_justify="left")
        table.add_column("event")
        for scene in scenes:
            table.add_column(scene, justify="right")
        for label in report.event_labels:
            table.add_row(label, *[str(report.cooccurrence[s].get(label, 0) or "·") for s in scenes])
        console.print(table)
    for message in report.warnings:
        console.print(f"[yellow]warning[/yellow] {message}", highlight=False)
    for message in report.fatal:
        console.print(f"[red]problem[/red] {message}", highlight=False)
    if not report.fatal:
        console.print("[green]no problem that would stop training[/green]")


@data_app.command("download")
def download(
    name: Annotated[str, typer.Argument(help="Dataset: tut-joint, tau-2022-mobile or desed (see `jasc data list`).")],
    root: Annotated[
        Path | None, typer.Option("--root", "-r", help="Dataset folder; default <data home>/NAME ($JASC_DATA).")
    ] = None,
    with_: Annotated[
        list[str] | None, typer.Option("--with", help="Also fetch this optional part (tau-2022-mobile: eval).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be fetched and its size; fetch nothing.")]
    = False,
    keep_archives: Annotated[
        bool, typer.Option("--keep-archives", help="Keep the archives under ROOT/archives/ after unpacking.")
    ] = False,
) -> None:
    """Fetch a dataset's public files, check every md5, unpack them safely; files already present are skipped."""
    from jasc_datasets.download import download as fetch_all
    from jasc_datasets.download import is_present
    from jasc_datasets.packages import dataset_info, default_root, human_size, packages_of, size_text

    info = dataset_info(name)
    parts = info.default_parts + tuple(p for p in (with_ or []) if p not in info.default_parts)
    folder = root or default_root(name)
    wanted = packages_of(name, parts)
    todo = [p for p in wanted if not is_present(folder, p)]
    if dry_run:
        for package in todo:
            size = human_size(package.size) if package.size is not None else "size not published"
            print(f"{package.url()}\t{size}")
        print(f"{name}: {len(todo)} of {len(wanted)} files to fetch into {folder}, {size_text(todo)}"
              + (f" (parts: {', '.join(parts)})" if parts else ""))
    else:
        print(f"{name}: {len(todo)} of {len(wanted)} files to fetch into {folder}, {size_text(todo)}")
        fetch_all(name, folder, parts, progress=console.is_terminal, keep_archives=keep_archives, report=print)
        print(f"{name}: complete in {folder} ({len(wanted)} files verified)")
    if info.manual_steps:
        print(info.manual_steps.format(root=folder))


@data_app.command("list")
def list_() -> None:
    """What `jasc data download` knows, what is present where, and its size."""
    from jasc_datasets.download import is_present, present_size
    from jasc_datasets.packages import DATASETS, data_home, default_root, human_size, packages_of, size_text

    table = Table(title=f"datasets (data home {data_home()}, or $JASC_DATA)", title_justify="left")
    for column in ("name", "part", "present", "download", "on disk"):
        table.add_column(column, justify="left" if column in ("name", "part") else "right")
    for name, info in DATASETS.items():
        folder = default_root(name)
        shown, disk = name, human_size(present_size(folder)) if folder.is_dir() else "-"
        for part in info.default_parts + info.optional_parts:
            files = packages_of(name, (part,))
            present = sum(is_present(folder, p) for p in files)
            label = part if part in info.default_parts else f"{part} (--with {part})"
            table.add_row(shown, label, f"{present}/{len(files)} files", size_text(files), disk)
            shown, disk = "", ""
    console.print(table)
    for name in DATASETS:
        console.print(f"{name}: {default_root(name)}", highlight=False)
    console.print("fetch one with: jasc data download NAME  (--dry-run to see the files first)", highlight=False)
