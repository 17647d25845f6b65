"""One DCASE event TSV format: the evaluation's <split>_events.tsv and jasc predict's events.tsv agree byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core.contract.event_tsv import event_tsv
from jasc_core.evaluation.events import write_event_tsv
from jasc_core.inference.outputs import events_tsv

EVENTS = {"a.wav": [(0.0, 1.5, "Dog"), (2.25, 10.0, "Speech")], "b.wav": [], "c.wav": [(10800.1234, 10801.0, "car")]}


def _predicted(events, score=0.5):
    """The same events as ``jasc predict`` results (JSON data), each with a peak score."""
    return [{"filename": name, "events": [{"onset": on, "offset": off, "event_label": label, "score": score}
                                          for on, off, label in found]} for name, found in events.items()]


def test_header_and_number_formats_are_pinned(tmp_path):
    write_event_tsv(tmp_path / "eval_events.tsv", EVENTS)
    assert (tmp_path / "eval_events.tsv").read_bytes() == (
        b"filename\tonset\toffset\tevent_label\n"
        b"a.wav\t0.000\t1.500\tDog\n"
        b"a.wav\t2.250\t10.000\tSpeech\n"
        b"c.wav\t10800.123\t10801.000\tcar\n")  # ms resolution however long the file (%g would write 10800.1)
    assert events_tsv(_predicted({"a.wav": [(0.0, 1.5, "Dog")]}, score=0.98765432)) == (
        "filename\tonset\toffset\tevent_label\tscore\na.wav\t0.000\t1.500\tDog\t0.987654\n")
    assert event_tsv([]) == "filename\tonset\toffset\tevent_label\n"
    with pytest.raises(ValueError, match="expected 5 fields"):
        event_tsv([("a.wav", 0.0, 1.0, "Dog")], scored=True)


def _columns(text: str, n: int) -> bytes:
    return "".join("\t".join(line.split("\t")[:n]) + "\n" for line in text.splitlines()).encode()


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\t"), min_size=1),
    st.lists(st.tuples(st.floats(0, 1e5), st.floats(0, 1e5),
                       st.sampled_from(["Dog", "Speech", "Alarm_bell_ringing", "metro approaching"])), max_size=4),
    max_size=4))
def test_evaluation_and_prediction_tables_are_byte_identical_for_the_same_events(tmp_path_factory, events):
    path = tmp_path_factory.mktemp("tsv") / "events.tsv"
    write_event_tsv(path, events)
    predicted = events_tsv(_predicted(events))
    # The prediction table is the evaluation table plus the score column.
    assert _columns(predicted, 4) == path.read_bytes()
