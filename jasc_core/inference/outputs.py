"""Predicting many files and writing what came out: one TSV per task, or JSON (no torch needed).

Each task's table is written as its output kind says (``jasc_core.contract.task_outputs``), under its ``table``
name: ``frames`` as DCASE events (``filename onset offset event_label``, plus the event's peak ``score``:
``events.tsv``); ``class`` as ``filename <task>_label`` plus one probability column per class (``scenes.tsv``);
``multilabel`` as ``filename <task>_labels`` (comma-separated) plus one probability column per class. A file that
cannot be read or scored is named on stderr and skipped; the others finish.
"""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from jasc_core.contract.event_tsv import event_tsv
from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.task_outputs import TaskOutputs
from jasc_core.errors import DataError

#: Extensions a folder argument is searched for (what soundfile/libsndfile decodes).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")


def predict_many(
    predict: Callable[[Path], JSONObject], paths: Sequence[Path], report: Callable[[str], None],
    progress: bool | None = None,
) -> tuple[list[JSONObject], list[Path]]:
    """``predict`` each path; a ``DataError`` (unreadable, empty, too short) is reported and the file skipped.

    ``progress``: a rich progress bar on stderr (default: when stderr is a terminal and there is more than one file).
    """
    results: list[JSONObject] = []
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


def events_tsv(results: Sequence[JSONObject], key: str = "events") -> str:
    """DCASE event TSV (``jasc_core.contract.event_tsv``) of the event lists under ``key`` (a frame-level task's
    ``result_key``), with each event's peak ``score``."""
    return event_tsv([(result["filename"], event["onset"], event["offset"], event["event_label"], event["score"])
                      for result in results for event in result.get(key, [])], scored=True)


def clips_tsv(results: Sequence[JSONObject], spec: TaskOutputs) -> str:
    """One row per file of a clip-level task: its label (``class``) or labels (``multilabel``) and probabilities."""
    key = spec.result_key
    rows = [r for r in results if key in r]
    labels = list(rows[0][f"{key}_probabilities"]) if rows else []
    column = f"{spec.task}_label" if spec.kind == "class" else f"{spec.task}_labels"
    lines = ["\t".join(["filename", column, *labels])]
    for result in rows:
        probs = [f"{result[f'{key}_probabilities'][label]:.6f}" for label in labels]
        value = result[key] if spec.kind == "class" else ",".join(result[key])
        lines.append("\t".join([result["filename"], value, *probs]))
    return "\n".join(lines) + "\n"


def task_tables(results: Sequence[JSONObject], tasks: Mapping[str, TaskOutputs]) -> dict[str, str]:
    """Each task's TSV by file name, for the tasks some result has."""
    tables = {}
    for spec in tasks.values():
        if any(spec.result_key in r for r in results):
            tables[spec.table] = events_tsv(results, spec.result_key) if spec.frame_level else clips_tsv(results, spec)
    return tables


def write_results(results: Sequence[JSONObject], out: Path | None, as_json: bool,
                  echo: Callable[[str], None], tasks: Mapping[str, TaskOutputs]) -> list[Path]:
    """Write to ``out`` (``predictions.json`` or one TSV per task) or ``echo`` to stdout."""
    json_text = {"predictions.json": json.dumps(list(results), indent=2) + "\n"}
    texts = json_text if as_json else task_tables(results, tasks)
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
