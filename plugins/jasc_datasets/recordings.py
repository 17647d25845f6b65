"""Recordings (what annotation files describe) and their cutting into fixed-length clips (what the engine trains on).

An annotation row describes an event in a whole recording, which may last minutes (the TUT files of the papers).
The engine wants fixed-length clips (10 s = the papers' 500 frames of 20 ms), so each recording is windowed, events
are cut at the window boundaries and the last window is zero-padded. Same-class events that overlap or touch are
merged first and zero-length events dropped: sed_scores_eval rejects both, and they carry no extra information.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, replace

from jasc_core import Clip, Event

#: Time resolution kept in clip-relative event times; it hides float noise such as 9.999999999 for 10.
TIME_DECIMALS = 6
#: A window shorter than this at the end of a recording is not made into a clip of its own (it is float noise of a
#: duration that is a whole number of clips, not audio).
MIN_LAST_WINDOW = 1e-3


@dataclass
class Recording:
    """One audio file and its labels, as annotation files describe it (times in seconds from the file start)."""

    path: str  # absolute path of the audio file
    relpath: str  # the path as the annotation names it
    scene: str | None = None
    events: list[Event] | None = None  # None: event labels unknown; []: labelled, no events
    weak: tuple[str, ...] | None = None
    source: str = ""  # "file:line" of the first row that names it, for messages


def merge_events(events: list[Event]) -> tuple[list[Event], int, int]:
    """Merge same-class events that overlap or touch, drop zero-length ones.

    Returns ``(events sorted by onset, number of merges, number of dropped zero-length events)``.
    """
    zero = sum(1 for e in events if e.offset <= e.onset)
    by_label: dict[str, list[Event]] = {}
    for event in events:
        if event.offset > event.onset:
            by_label.setdefault(event.label, []).append(event)
    merged: list[Event] = []
    merges = 0
    for label, group in by_label.items():
        group.sort(key=lambda e: (e.onset, e.offset))
        onset, offset = group[0].onset, group[0].offset
        for event in group[1:]:
            if event.onset <= offset:  # overlap or touch: one event
                offset = max(offset, event.offset)
                merges += 1
            else:
                merged.append(Event(onset, offset, label))
                onset, offset = event.onset, event.offset
        merged.append(Event(onset, offset, label))
    merged.sort(key=lambda e: (e.onset, e.offset, e.label))
    return merged, merges, zero


def merge_recording_events(recordings: list[Recording], notes: Counter) -> list[Recording]:
    """``recordings`` with their events merged (:func:`merge_events`); the merges and dropped zero-length events
    are added to ``notes`` (``merged_overlaps``, ``dropped_zero_length``). Recordings without event labels stay so."""
    merged: list[Recording] = []
    for recording in recordings:
        if recording.events is not None:
            events, merges, zeros = merge_events(recording.events)
            notes["merged_overlaps"] += merges
            notes["dropped_zero_length"] += zeros
            recording = replace(recording, events=events)
        merged.append(recording)
    return merged


def unique_stems(relpaths: list[str]) -> dict[str, str]:
    """A short, unique, file-name-safe id per path: the fewest trailing path components (without extension) that
    tell the paths apart, joined by ``-``. ``audio/home/a038.wav`` -> ``a038``, or ``home-a038`` if another ``a038``
    exists."""
    parts = {p: os.path.splitext(p.replace("\\", "/"))[0].strip("/").split("/") for p in relpaths}
    depth = 1
    longest = max((len(v) for v in parts.values()), default=1)
    while True:
        stems = {p: "-".join(v[-depth:]) for p, v in parts.items()}
        if len(set(stems.values())) == len(stems) or depth >= longest:
            break
        depth += 1
    return {p: s.replace(" ", "_") for p, s in stems.items()}


def window_recording(
    recording: Recording, duration: float, clip_seconds: float, stem: str, notes: Counter, single: bool = False
) -> list[Clip]:
    """Cut a recording of ``duration`` seconds into clips of ``clip_seconds`` (the last one zero-padded).

    Events are cut at clip boundaries; events (or parts) past the end of the audio are dropped and counted in
    ``notes``. With ``single`` only the first window is made (weakly labelled or unlabelled files, whose labels
    describe the whole file and cannot be attributed to one window).
    """
    n_clips = max(1, math.ceil((duration - MIN_LAST_WINDOW) / clip_seconds))
    if single:
        if n_clips > 1:
            notes["files_longer_than_clip"] += 1
        n_clips = 1
    events = recording.events
    if events is not None:
        kept = []
        for event in events:
            if event.onset >= duration:
                notes["events_after_audio_end"] += 1
                continue
            if event.offset > duration + MIN_LAST_WINDOW:
                notes["events_cut_at_audio_end"] += 1
            kept.append(Event(event.onset, min(event.offset, duration), event.label))
        events = kept
    clips = []
    width = max(3, len(str(n_clips - 1)))
    for index in range(n_clips):
        start = index * clip_seconds
        end = start + clip_seconds
        clip_events = None
        if events is not None:
            clip_events = []
            for event in events:
                onset = round(max(event.onset, start) - start, TIME_DECIMALS)
                offset = round(min(event.offset, end) - start, TIME_DECIMALS)
                if offset > onset:
                    clip_events.append(Event(onset, offset, event.label))
            clip_events = tuple(clip_events)
        clips.append(
            Clip(
                clip_id=f"{stem}__{index:0{width}d}",
                path=recording.path,
                start=round(start, TIME_DECIMALS),
                duration=clip_seconds,
                scene=recording.scene,
                events=clip_events,
                weak=recording.weak,
            )
        )
    return clips
