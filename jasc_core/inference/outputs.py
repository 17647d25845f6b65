"""Predicting many files and writing what came out: DCASE event TSV, scene TSV or JSON (no torch needed).

Events TSV (DCASE: ``filename onset offset event_label``, plus the event's peak ``score``); scenes TSV (``filename
scene_label`` plus one probability column per scene class). A file that cannot be read or scored is named on stderr
and skipped; the others finish.
"""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jasc_core.errors import DataError

EVENT_COLUMNS = ("filename", "onset", "offset", "event_label", "score")
#: Extensions a folder argument is searched for (what soundfile/libsndfile decodes).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")


def predict_many(
    predict: Callable[[Path], dict[str, Any]], paths: Sequence[Path], report: Callable[[str], None],
    progress: bool | None = None,
) -> tuple[list[dict[str, Any]], list[Path]]:
    """``predict`` each path; a ``DataError`` (unreadable, empty, too short) is reported and the file skipped.

    ``progress``: a rich progress bar on stderr (default: when stderr is a terminal and there is more than one file).
    """
    results: list[dict[str, Any]] = []
    skipped: list[Path] = []
    show = (sys.stderr.isatty() and len(paths) > 1) if progress is None else progress
    bar = None
    if show:
        from rich.progress import Progress

        bar = Progress(transient=True, console=None)
        bar.start()
        task = bar.add_task("predicting", total=len(paths))
    try:
        for path in paths:
            try:
                results.append(predict(path))
            except DataError as exc:
                skipped.append(path)
                report(f"skipped {path}: {exc}")
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return results, skipped


def events_tsv(results: Sequence[dict[str, Any]]) -> str:
    lines = ["\t".join(EVENT_COLUMNS)]
    for result in results:
        for event in result.get("events", []):
            lines.append(f"{result['filename']}\t{event['onset']:g}\t{event['offset']:g}\t{event['event_label']}\t"
                         f"{event['score']:.6f}")
    return "\n".join(lines) + "\n"


def scenes_tsv(results: Sequence[dict[str, Any]]) -> str:
    with_scene = [r for r in results if "scene" in r]
    labels = list(with_scene[0]["scene_probabilities"]) if with_scene else []
    lines = ["\t".join(["filename", "scene_label", *labels])]
    for result in with_scene:
        probs = [f"{result['scene_probabilities'][label]:.6f}" for label in labels]
        lines.append("\t".join([result["filename"], result["scene"], *probs]))
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[dict[str, Any]], out: Path | None, as_json: bool,
                  echo: Callable[[str], None]) -> list[Path]:
    """Write to ``out`` (``predictions.json`` or ``events.tsv`` + ``scenes.tsv``) or ``echo`` to stdout."""
    has_scene = any("scene" in r for r in results)
    has_events = any("events" in r for r in results)
    texts: dict[str, str] = {}
    if as_json:
        texts["predictions.json"] = json.dumps(list(results), indent=2) + "\n"
    else:
        if has_events:
            texts["events.tsv"] = events_tsv(results)
        if has_scene:
            texts["scenes.tsv"] = scenes_tsv(results)
    if out is None:
        if results:  # every file skipped: nothing on stdout
            echo("\n".join(texts.values()).rstrip("\n"))
        return []
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files, folders (searched recursively for audio files) and glob patterns -> a list of paths.

    A name that is neither a folder nor matches a pattern stays in the list as given, so that reading it reports it.
    """
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        elif any(ch in item for ch in "*?[") and not path.exists():
            paths += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            paths.append(path)
    return paths
