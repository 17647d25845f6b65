"""The joint annotation format of the papers' TUT subset (``KeisukeImoto/metadata_SEDandASC01``).

Tab-separated, header ``path  scene_label  event_start_time  event_end_time  event_label``, one row per event; a
recording without events has one row with the three event fields empty; paths are relative to the dataset root.
"""

from __future__ import annotations

import os

from jasc_core import Event
from jasc_datasets.recordings import Recording
from jasc_datasets.tables import Problems, check_label, parse_time, read_table

COLUMNS = ("path", "scene_label", "event_start_time", "event_end_time", "event_label")


def read_joint(
    annotation: str,
    root: str,
    problems: Problems,
    scene_labels: list[str] | None = None,
    event_labels: list[str] | None = None,
) -> list[Recording]:
    """Recordings of one annotation file, in order of first appearance, with their (unmerged) events.

    Problems (bad rows, unknown labels against the given vocabularies, a recording given two scene labels) are
    added to ``problems`` with ``file:line``; the offending rows are left out.
    """
    recordings: dict[str, Recording] = {}
    for line, row in read_table(annotation, COLUMNS, problems):
        where = f"{annotation}:{line}"
        relpath = row["path"]
        if not relpath:
            problems.add(where, "empty path")
            continue
        scene = row["scene_label"] or None
        if scene is not None and not check_label(scene, scene_labels, "scene", where, problems):
            continue
        recording = recordings.get(relpath)
        if recording is None:
            recording = Recording(
                path=os.path.normpath(os.path.join(root, relpath)),
                relpath=relpath,
                scene=scene,
                events=[],
                source=where,
            )
            recordings[relpath] = recording
        elif recording.scene != scene:
            problems.add(where, f"{relpath} has scene {scene!r} here but {recording.scene!r} at {recording.source}")
            continue
        fields = (row["event_start_time"], row["event_end_time"], row["event_label"])
        if not any(fields):
            continue  # the row of a recording without events
        if not all(fields):
            problems.add(where, "event fields must be all given or all empty (onset, offset, label)")
            continue
        onset = parse_time(fields[0], where, "event_start_time", problems)
        offset = parse_time(fields[1], where, "event_end_time", problems)
        if onset is None or offset is None:
            continue
        if onset > offset:
            problems.add(where, f"onset {fields[0]} is after offset {fields[1]}")
            continue
        if not check_label(fields[2], event_labels, "event", where, problems):
            continue
        recording.events.append(Event(onset, offset, fields[2]))
    return list(recordings.values())


def write_joint(path: str, rows: list[tuple[str, str, list[Event]]]) -> None:
    """Write ``(relpath, scene, events)`` rows in the joint format (an event-less recording gets one empty row)."""
    lines = ["\t".join(COLUMNS)]
    for relpath, scene, events in rows:
        if not events:
            lines.append(f"{relpath}\t{scene}\t\t\t")
        for event in events:
            lines.append(f"{relpath}\t{scene}\t{event.onset:.6f}\t{event.offset:.6f}\t{event.label}")
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")
