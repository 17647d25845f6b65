"""TAU and DESED formats, the disjoint dataset, the dcase-disjoint preset, and component conformance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jasc_core import DataError, Event, labelled_tasks
from jasc_core.testing import check_component
from jasc_datasets import Desed, Disjoint, Joint, Synthetic, Tau
from jasc_datasets.synthetic import reader_for, synthesize


def wav(path: Path, seconds: float, rate: int = 1000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(seconds * rate), 0.1, dtype=np.float32), rate, subtype="PCM_16")


@pytest.fixture
def tau_root(tmp_path: Path) -> Path:
    root = tmp_path / "tau"
    names = [("airport-lisbon-1000-40000-a", "airport", "lisbon-1000"), ("bus-lyon-1001-40001-b", "bus", "lyon-1001"),
             ("bus-lyon-1001-40002-b", "bus", "lyon-1001"), ("park-milan-1002-40003-s1", "park", "milan-1002")]
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    for stem, scene, ident in names:
        wav(root / "audio" / f"{stem}.wav", 1.0)
        meta.append(f"audio/{stem}.wav\t{scene}\t{ident}\t{stem.rsplit('-', 1)[1]}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n")
    (root / "evaluation_setup").mkdir()
    (root / "evaluation_setup" / "fold1_train.csv").write_text(
        "filename\tscene_label\n" + "".join(f"audio/{n[0]}.wav\t{n[1]}\n" for n in names[:3]))
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_text(f"filename\tscene_label\naudio/{names[3][0]}.wav\tpark\n")
    return root


@pytest.fixture
def desed_root(tmp_path: Path) -> Path:
    root = tmp_path / "desed"
    for name in ("s1.wav", "s2.wav"):
        wav(root / "audio/train/strong" / name, 10.0)
    for name in ("w1.wav", "w2.wav"):
        wav(root / "audio/train/weak" / name, 10.0)
    for name in ("u1.wav", "u2.wav", "u3.wav"):
        wav(root / "audio/train/unlabeled" / name, 10.0)
    wav(root / "audio/validation/v1.wav", 10.0)
    wav(root / "audio/eval/e1.wav", 9.5)  # a DESED clip a bit short of 10 s: padded
    (root / "metadata/train").mkdir(parents=True)
    (root / "metadata/validation").mkdir(parents=True)
    (root / "metadata/eval").mkdir(parents=True)
    (root / "metadata/train/strong.tsv").write_text(
        "filename\tonset\toffset\tevent_label\n"
        "s1.wav\t0.5\t2.0\tDog\ns1.wav\t1.5\t3.0\tDog\n"  # overlap: merged
        "s1.wav\t4.0\t4.0\tSpeech\n"  # zero length: dropped
        "s1.wav\t5.0\t9.0\tSpeech\n"
        "s2.wav\t\t\t\n")  # no events
    (root / "metadata/train/weak.tsv").write_text("filename\tevent_labels\nw1.wav\tDog,Speech\nw2.wav\tCat\n")
    (root / "metadata/validation/validation.tsv").write_text("filename\tonset\toffset\tevent_label\nv1.wav\t1\t2\tCat\n")
    (root / "metadata/eval/eval.tsv").write_text("filename\tonset\toffset\tevent_label\ne1.wav\t0\t9.5\tSpeech\n")
    return root


def test_tau_fixture(tau_root: Path) -> None:
    dataset = Tau({"root": str(tau_root)})
    assert dataset.splits() == ["train", "eval"]
    train = dataset.load("train")
    assert len(train) == 3 and train.scene_labels == ["airport", "bus", "park"]
    assert [c.clip_id for c in train] == ["airport-lisbon-1000-40000-a", "bus-lyon-1001-40001-b",
                                          "bus-lyon-1001-40002-b"]
    assert all(c.events is None and c.duration == 1.0 for c in train) and labelled_tasks(train) == {"scene"}
    assert dataset.audio(train[0], 2000).shape == (2000,)


def test_tau_val_carve_keeps_identifiers_together(tau_root: Path) -> None:
    dataset = Tau({"root": str(tau_root), "val_fraction": 0.5})
    train, val = dataset.load("train"), dataset.load("val")
    assert len(train) + len(val) == 3 and len(val) in (1, 2)
    assert {c.clip_id.split("-")[1] for c in train}.isdisjoint({c.clip_id.split("-")[1] for c in val})


def test_tau_errors_name_file_and_line(tau_root: Path) -> None:
    (tau_root / "evaluation_setup" / "fold1_evaluate.csv").write_text("filename\naudio/absent.wav\n")
    with pytest.raises(DataError, match=r"fold1_evaluate.csv:2: audio/absent.wav is not in"):
        Tau({"root": str(tau_root)}).load("train")
    with pytest.raises(DataError, match="meta.csv:2: unknown scene label 'airport'"):
        Tau({"root": str(tau_root), "scene_labels": ["bus", "park"]}).load("train")


def test_desed_fixture(desed_root: Path) -> None:
    dataset = Desed({"root": str(desed_root)})
    assert dataset.splits() == ["train", "val", "eval"]
    train = dataset.load("train")
    assert len(train) == 2 + 2 + 3 and train.event_labels == ["Cat", "Dog", "Speech"]
    by_id = {c.clip_id: c for c in train}
    assert by_id["s1"].events == (Event(0.5, 3.0, "Dog"), Event(5.0, 9.0, "Speech"))
    assert by_id["s2"].events == () and by_id["w1"].weak == ("Dog", "Speech") and by_id["w1"].events is None
    assert by_id["u1"].events is None and by_id["u1"].weak is None and by_id["u1"].scene is None
    assert train.notes["merged_overlaps"] == 1 and train.notes["dropped_zero_length"] == 1
    assert labelled_tasks(train) == {"event"}
    evaluation = dataset.load("eval")
    assert evaluation[0].duration == 10.0 and dataset.audio(evaluation[0], 1000)[9600:].max() == 0


def test_desed_errors(desed_root: Path) -> None:
    (desed_root / "metadata/train/weak.tsv").write_text("filename\tevent_labels\nw1.wav\tDog,Unicorn\n")
    with pytest.raises(DataError, match=r"weak.tsv:2: unknown event label 'Unicorn'"):
        Desed({"root": str(desed_root), "event_labels": ["Cat", "Dog", "Speech"]}).load("train")
    (desed_root / "metadata/train/strong.tsv").write_text("filename\tonset\tevent_label\ns1.wav\t1\tDog\n")
    with pytest.raises(DataError, match=r"strong.tsv:1: header lacks column\(s\) 'offset'"):
        Desed({"root": str(desed_root)}).load("train")


def test_disjoint_combines_both(tau_root: Path, desed_root: Path) -> None:
    dataset = Disjoint({"tau": {"root": str(tau_root)}, "desed": {"root": str(desed_root)}})
    assert dataset.splits() == ["train", "eval", "val"]
    train = dataset.load("train")
    assert len(train) == 3 + 7 and labelled_tasks(train) == {"scene", "event"}
    assert train.scene_labels == ["airport", "bus", "park"] and train.event_labels == ["Cat", "Dog", "Speech"]
    assert sum(c.scene is not None for c in train) == 3 and sum(c.events is not None for c in train) == 2
    assert len(dataset.load("val")) == 1  # only the DESED part has a val split


def test_dcase_disjoint_preset_reads_back(tmp_path: Path) -> None:
    folder, _ = synthesize("dcase-disjoint", tmp_path / "dd", minutes=2.0, seed=0, sample_rate=8000)
    assert (folder / "tau/meta.csv").read_text().startswith("filename\tscene_label\tidentifier\tsource_label\n")
    dataset = reader_for("dcase-disjoint", folder)
    train = dataset.load("train")
    assert len(train.scene_labels) == 10 and len(train.event_labels) == 10
    scene_clips = [c for c in train if c.scene is not None]
    assert scene_clips and all(c.duration == 1.0 and c.events is None for c in scene_clips)
    assert any(c.weak for c in train) and any(c.events for c in train)
    assert any(c.weak is None and c.events is None and c.scene is None for c in train)  # unlabeled
    assert labelled_tasks(dataset.load("eval")) == {"scene", "event"}
    assert dataset.audio(scene_clips[0], 8000).shape == (8000,)


@pytest.mark.parametrize("cls", [Joint, Tau, Desed, Synthetic])
def test_conformance(cls, tmp_path: Path) -> None:
    block = {} if cls is Synthetic else {"root": str(tmp_path)}
    check_component(cls, block)


def test_conformance_disjoint(tmp_path: Path) -> None:
    check_component(Disjoint, {"tau": {"root": str(tmp_path)}, "desed": {"root": str(tmp_path)}})
