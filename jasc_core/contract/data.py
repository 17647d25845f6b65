"""The clip list every dataset produces and every consumer (engine, evaluation, ``jasc data info``) reads.

A clip is a fixed-length window of one recording. Times are in seconds from the start of the clip. A clip that has
no label for a task says so with ``None`` (``scene is None`` for an event-only dataset, ``events is None`` for a
scene-only one); an empty event list means "annotated, and nothing happens". Which tasks a clip is labelled for is
the task descriptions' to say (``jasc_core.contract.tasks.labelled_tasks``).

Beyond the labels, a clip may say where it comes from: the recording ``device`` (TAU Urban Acoustic Scenes' ``a``,
``b``, ``s1``, ...), the ``dataset`` it belongs to when a recipe joins several, and ``event_classes``: the event
classes that dataset annotates (None: all of the split's ``event_labels``). A clip is neither a positive nor a
negative for a class outside its ``event_classes``. An event's ``strength`` is 1 for ordinary (hard) labels and the
annotators' agreement in [0, 1] for soft ones (MAESTRO Real).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One annotated sound event inside a clip (seconds from the clip start, ``onset < offset``)."""

    onset: float
    offset: float
    label: str
    #: 1.0 for a hard label; a soft label's value in [0, 1] (annotator agreement).
    strength: float = 1.0


@dataclass(frozen=True)
class Clip:
    """A fixed-length window of a recording, with the labels it has.

    ``clip_id`` is unique within a split and is the ``filename`` of DCASE TSV output. ``path`` is the audio file,
    ``start`` the window's offset in it (seconds) and ``duration`` the window length; a window that runs past the end
    of the recording is zero-padded. ``weak`` holds clip-level event labels where only those are known.
    """

    clip_id: str
    path: str
    start: float
    duration: float
    scene: str | None = None
    events: tuple[Event, ...] | None = None
    weak: tuple[str, ...] | None = None
    #: The recording device (TAU's ``meta.csv`` device column), None where unknown.
    device: str | None = None
    #: The dataset the clip comes from when a recipe joins several, None for a single dataset.
    dataset: str | None = None
    #: The event classes the clip's dataset annotates; None: every event class of the split.
    event_classes: tuple[str, ...] | None = None


@dataclass
class ClipList(Sequence[Clip]):
    """The clips of one split and the label vocabularies they are indexed with."""

    clips: list[Clip]
    scene_labels: list[str] = field(default_factory=list)
    event_labels: list[str] = field(default_factory=list)
    #: Counted, non-fatal problems found while loading (merged overlaps, dropped zero-length events, skipped files).
    notes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index):  # type: ignore[override]
        return self.clips[index]

    def __iter__(self) -> Iterator[Clip]:
        return iter(self.clips)
