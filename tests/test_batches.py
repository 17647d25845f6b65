"""Batches: the frame rule of event targets, masks for clips without a task's labels, the labelled subset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core.contract.batch import Batch
from jasc_core.contract.data import Clip, ClipList, Event
from jasc_core.contract.tasks import event_roll, labelled_subset
from jasc_core.data.clips import ClipDataset
from jasc_core.data.loaders import collate
from jasc_core.errors import DataError


def _clip(events=(), scene="a", duration=1.0, clip_id="c"):
    return Clip(clip_id, "mem", 0.0, duration, scene=scene, events=None if events is None else tuple(events))


def test_event_roll_marks_every_frame_an_event_overlaps():
    # hop 0.1 s: frame t covers [0.1 t, 0.1 (t+1)).
    clip = _clip([Event(0.25, 0.4, "x"), Event(0.0, 0.05, "y"), Event(0.95, 1.5, "y")])
    roll = event_roll(clip, ["x", "y"], n_frames=10, hop_seconds=0.1)
    assert np.flatnonzero(roll[:, 0]).tolist() == [2, 3]  # 0.4 ends exactly on frame 4's start: not frame 4
    assert np.flatnonzero(roll[:, 1]).tolist() == [0, 9]  # clipped to the clip's frames


def test_event_roll_rejects_unknown_labels():
    with pytest.raises(DataError, match="'z'"):
        event_roll(_clip([Event(0.1, 0.2, "z")]), ["x"], 10, 0.1)


@settings(max_examples=60, deadline=None)
@given(
    onset=st.floats(0.0, 0.99, allow_nan=False),
    length=st.floats(0.001, 1.0, allow_nan=False),
    hop=st.sampled_from([0.02, 0.05, 0.1, 0.064]),
)
def test_event_roll_matches_the_overlap_rule(onset, length, hop):
    offset = onset + length
    n_frames = math.ceil(1.0 / hop)
    roll = event_roll(_clip([Event(onset, offset, "x")]), ["x"], n_frames, hop)[:, 0]
    for t in range(n_frames):
        overlaps = onset < (t + 1) * hop - 1e-6 * hop and offset > t * hop + 1e-6 * hop
        touches = abs(onset - (t + 1) * hop) <= 1e-6 * hop or abs(offset - t * hop) <= 1e-6 * hop
        if not touches:  # boundaries within float noise may go either way
            assert bool(roll[t]) == overlaps, (t, onset, offset, hop)


class _Source:
    def audio(self, clip, sample_rate):
        return np.full(round(clip.duration * sample_rate), 0.5, dtype=np.float32)


def _dataset(clips, **kwargs):
    return ClipDataset(
        ClipList(clips, scene_labels=["a", "b"], event_labels=["x"]), _Source(), sample_rate=100, hop_seconds=0.1,
        n_frames_for=lambda n: n // 10, **kwargs,
    )


def test_collate_masks_tasks_and_drops_a_task_no_clip_has():
    data = _dataset([_clip(scene="b", events=None, clip_id="1"), _clip(scene=None, events=[Event(0, 0.3, "x")],
                                                                        clip_id="2")])
    batch = collate([data[0], data[1]])
    assert batch.waveform.shape == (2, 100)
    assert batch.masks["scene"].tolist() == [True, False]
    assert batch.targets["scene"][0] == 1
    assert batch.masks["event"].tolist() == [False, True]
    assert batch.targets["event"].shape == (2, 10, 1)
    only_scene = collate([data[0]])
    assert "event" not in only_scene.targets and "event" not in only_scene.masks


def test_labelled_subset_keeps_only_labelled_clips_and_aligns_frames():
    data = _dataset([_clip(scene="a", clip_id="1"), _clip(scene=None, clip_id="2"), _clip(scene="b", clip_id="3")])
    batch = collate([data[i] for i in range(3)])
    outputs = {"scene": torch.randn(3, 2), "event": torch.randn(3, 9, 1)}
    outs, targets = labelled_subset(outputs, batch, ["scene", "event"])
    assert torch.equal(outs["scene"], outputs["scene"][[0, 2]])
    assert targets["scene"].tolist() == [0, 1]
    assert outs["event"].shape == targets["event"].shape == (3, 9, 1)


def test_audio_of_the_wrong_length_is_a_data_error():
    class Short(_Source):
        def audio(self, clip, sample_rate):
            return np.zeros(5, dtype=np.float32)

    data = ClipDataset(ClipList([_clip()], scene_labels=["a"]), Short(), sample_rate=100, hop_seconds=0.1,
                       n_frames_for=lambda n: n // 10)
    with pytest.raises(DataError, match="expected \\(100,\\)"):
        data[0]


def test_cache_keeps_waveforms():
    calls = []

    class Counting(_Source):
        def audio(self, clip, sample_rate):
            calls.append(clip.clip_id)
            return super().audio(clip, sample_rate)

    data = ClipDataset(ClipList([_clip()], scene_labels=["a"]), Counting(), sample_rate=100, hop_seconds=0.1,
                       n_frames_for=lambda n: n // 10, cache=True)
    data[0], data[0]
    assert calls == ["c"]


def test_soft_events_give_their_strength_and_overlaps_keep_the_highest():
    clip = _clip([Event(0.0, 0.5, "x", strength=0.4), Event(0.3, 0.7, "x", strength=0.8)])
    roll = event_roll(clip, ["x"], n_frames=10, hop_seconds=0.1)[:, 0]
    assert roll.tolist() == pytest.approx([0.4, 0.4, 0.4, 0.8, 0.8, 0.8, 0.8, 0, 0, 0])


def test_class_masks_are_collated_where_a_clip_annotates_only_some_classes():
    labels = ClipList([], scene_labels=["a"], event_labels=["x", "y", "z"])
    partial = Clip("p", "mem", 0.0, 1.0, events=(Event(0.1, 0.2, "x"),), event_classes=("x", "z"), dataset="maestro",
                   device="s1")
    full = Clip("f", "mem", 0.0, 1.0, events=(), dataset="desed")
    data = ClipDataset(ClipList([partial, full], scene_labels=labels.scene_labels, event_labels=labels.event_labels),
                       _Source(), sample_rate=100, hop_seconds=0.1, n_frames_for=lambda n: n // 10)
    batch = collate([data[0], data[1]])
    assert batch.class_masks["event"].tolist() == [[True, False, True], [True, True, True]]
    assert batch.datasets == ["maestro", "desed"] and batch.devices == ["s1", None]
    assert "scene" not in batch.class_masks
    assert collate([data[1]]).class_masks == {}  # every clip annotates every class: no mask


def test_class_masks_reject_a_class_outside_the_vocabulary():
    clip = Clip("p", "mem", 0.0, 1.0, events=(), event_classes=("w",))
    data = ClipDataset(ClipList([clip], event_labels=["x"]), _Source(), sample_rate=100, hop_seconds=0.1,
                       n_frames_for=lambda n: n // 10)
    with pytest.raises(DataError, match=r"event_classes \['w'\]"):
        data[0]


def test_batch_moves_every_tensor_and_keeps_dict_access_with_a_deprecation_warning():
    data = _dataset([_clip(scene="b", events=[Event(0, 0.3, "x")], clip_id="1")])
    batch = collate([data[0]])
    moved = batch.to("meta")
    assert moved.waveform.device.type == "meta" and moved.targets["event"].device.type == "meta"
    assert moved.masks["scene"].device.type == "meta" and moved.clip_ids == ["1"] and len(moved) == 1
    with pytest.warns(DeprecationWarning, match=r"batch\.waveform"):
        assert batch["waveform"] is batch.waveform
    with pytest.warns(DeprecationWarning):
        as_dict = {**batch}  # what an augmentation written for dict batches does
    assert Batch(**as_dict) == batch
