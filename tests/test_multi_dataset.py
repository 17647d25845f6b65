"""The ``multi`` dataset: parts with class mappings, clip datasets and class masks, and a training run over them."""

from __future__ import annotations

import json

import engine_fakes
import numpy as np
import pytest

from jasc_core import ConfigError, DataError, component, training
from jasc_core.contract.tasks import event_roll
from jasc_core.evaluation.per_dataset import per_dataset_metrics

PARTS = [{"name": "fake_data", "label": "full"},
         {"name": "fake_data", "label": "half", "seed": 5, "classes": {"beep": "tone"}}]
SMALL = [{**part, "n_train": 8, "n_val": 4, "n_eval": 4} for part in PARTS]


def _multi(**overrides):
    block = {"datasets": PARTS, "event_labels": ["beep", "buzz", "tone"], "id_prefix": True, **overrides}
    dataset = component("dataset", "multi")(block)
    dataset.prepare()
    return dataset


def test_each_clip_knows_its_dataset_and_the_classes_it_annotates(fakes):
    clips = _multi().load("train")
    full = [c for c in clips if c.dataset == "full"]
    half = [c for c in clips if c.dataset == "half"]
    assert len(full) == len(half) == 24 and clips.event_labels == ["beep", "buzz", "tone"]
    assert all(c.event_classes == ("beep", "buzz") for c in full)  # fake_data's own labels
    assert all(c.event_classes == ("tone",) for c in half)
    assert {e.label for c in half for e in c.events} == {"tone"}  # beep mapped, buzz dropped
    assert all(c.clip_id.startswith("half-") for c in half)


def test_the_parts_read_their_own_clips(fakes):
    dataset = _multi()
    clip = next(c for c in dataset.load("val") if c.dataset == "half")
    own = component("dataset", "fake_data")({"seed": 5})
    original = next(c for c in own.load("val") if f"half-{c.clip_id}" == clip.clip_id)
    assert (dataset.audio(clip, 8000) == own.audio(original, 8000)).all()


def test_a_mapping_onto_an_unknown_class_or_a_repeated_label_is_a_config_error(fakes):
    with pytest.raises(ConfigError, match=r"datasets\[1\]\.classes maps onto \['bell'\]"):
        component("dataset", "multi")({"datasets": [PARTS[0], {**PARTS[1], "classes": {"beep": "bell"}}],
                                       "event_labels": ["beep", "buzz", "tone"]})
    with pytest.raises(ConfigError, match="a second part labelled 'full'"):
        component("dataset", "multi")({"datasets": [PARTS[0], PARTS[0]], "event_labels": ["beep", "buzz"]})


def test_unmapped_labels_outside_the_event_list_and_clashing_ids_are_data_errors(fakes):
    with pytest.raises(DataError, match=r"event labels \['buzz'\] are not in event_labels"):
        _multi(datasets=[{"name": "fake_data"}], event_labels=["beep"]).load("train")
    with pytest.raises(DataError, match="clip ids in more than one part"):
        _multi(id_prefix=False).load("train")


@pytest.mark.slow  # 25 s on the shared 2-core CPU; the fast tests above and test_class_masks pin the parts
def test_a_recipe_trains_on_two_datasets_with_class_masks(fakes, tmp_path):
    overrides = {"data": {"name": "multi", "datasets": SMALL, "event_labels": ["beep", "buzz", "tone"],
                          "id_prefix": True},
                 "model.heads": {"event": {"name": "fake_event"}}, "train.epochs": 1, "evaluate.plots": False,
                 "train.batch_size": 4,
                 "augment": [{"name": "mixup", "probability": 1.0}]}
    run = training.run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml", out_dir=tmp_path / "r")
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1 and history[0]["train_losses"]["event"] > 0
    datasets = json.loads((run / "metrics.json").read_text())["eval"]["event"]["datasets"]
    assert datasets["full"]["classes"] == ["beep", "buzz"] and datasets["half"]["classes"] == ["tone"]
    assert list(datasets["half"]["frame_per_class_f1"]) == ["tone"]  # each dataset on its own classes


def test_each_dataset_is_scored_on_its_own_clips_and_classes(fakes):
    clips = _multi(datasets=SMALL).load("eval")
    labels = clips.event_labels
    targets = np.stack([event_roll(c, labels, 20, 0.05) for c in clips])
    probs = np.clip(targets * 0.8 + 0.1, 0, 1)  # right everywhere
    probs[:, :, 2] = 1.0  # ...but 'tone' fires on every frame: only the half part annotates it
    out = per_dataset_metrics(clips, [c.clip_id for c in clips], probs, targets, np.ones(len(clips), bool), labels,
                              0.05, 0.5, lambda p: p, psds=False)
    assert set(out) == {"full", "half"} and out["full"]["n_clips"] == out["half"]["n_clips"] == 4
    assert out["full"]["frame_micro_f1"] == 1.0  # tone's false alarms on full's clips do not count there
    assert out["half"]["frame_micro_f1"] < 1.0
