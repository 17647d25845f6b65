"""The ``multi`` dataset's stand-in note names every generated part, the plain ``synthetic`` one included."""

from __future__ import annotations

from jasc_core import component


def _multi(parts):
    dataset = component("dataset", "multi")({"datasets": parts, "event_labels": ["beep", "buzz"], "id_prefix": True})
    for part in dataset.parts.values():
        if type(part).__name__ == "Synthetic":
            part.prepare = lambda: None  # no audio generated: the note depends on the config alone
    dataset.prepare()
    return dataset


def test_the_note_names_a_synthetic_part_next_to_a_stand_in(fakes):
    synthetic = {"name": "synthetic", "label": "desed", "preset": "dcase-disjoint", "minutes": 16}
    stand_in = {"name": "fake_data", "label": "maestro", "stand_in": "synthetic stand-in of maestro"}
    note = _multi([synthetic, stand_in]).stand_in
    assert note == ("desed: synthetic dcase-disjoint soundscapes (16 min); maestro: synthetic stand-in of maestro")


def test_without_a_stand_in_there_is_no_note(fakes):
    assert _multi([{"name": "synthetic", "label": "desed", "preset": "dcase-disjoint", "minutes": 16},
                   {"name": "fake_data", "label": "other"}]).stand_in is None
