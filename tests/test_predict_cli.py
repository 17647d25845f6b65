"""``jasc predict`` and ``jasc.load`` on a tiny trained run (engine fakes: 8-kHz features, 300-Hz tone = scene
'low', 1-kHz burst = event 'beep'): long stereo files at 44.1 kHz, bad files, a run with no checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from predict_runs import trained_fake_run

import jasc
from jasc_core.errors import DataError, RunError

RATE = 44100
#: Beeps (onset, offset) in the 95-s file; windows are 10 s with a 5-s hop, so most cross an edge (5, 10, 15, ...).
BEEPS = [(4.6, 5.3), (9.8, 10.3), (19.7, 20.2), (49.8, 50.25), (74.5, 75.6), (93.5, 94.4)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    with trained_fake_run(tmp_path_factory.mktemp("p") / "run") as run_dir:
        yield run_dir


def long_recording(seconds: float = 95.0, beeps=BEEPS) -> np.ndarray:
    """Stereo at 44.1 kHz: the 'low' scene's 300-Hz tone throughout, 1-kHz beeps in the left channel."""
    t = np.arange(round(seconds * RATE)) / RATE
    rng = np.random.default_rng(0)
    left = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.01 * rng.standard_normal(len(t))
    for onset, offset in beeps:
        on = (t >= onset) & (t < offset)
        left[on] += 0.6 * np.sin(2 * np.pi * 1000 * t[on])
    right = 0.3 * np.sin(2 * np.pi * 300 * t)
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "long.wav"
    sf.write(path, long_recording(), RATE)
    return path


def check_long_file(result):
    assert result["scene"] == "low" and result["duration"] == pytest.approx(95.0, abs=1e-3)
    beeps = [(e["onset"], e["offset"]) for e in result["events"] if e["event_label"] == "beep"]
    # One event per beep (none split at a window edge), each within a frame or two of the truth, over all 95 s.
    assert len(beeps) == len(BEEPS)
    for (onset, offset), (got_on, got_off) in zip(BEEPS, beeps, strict=True):
        assert abs(got_on - onset) <= 0.11 and abs(got_off - offset) <= 0.11
    assert all(0.5 < e["score"] <= 1 for e in result["events"])


def test_predict_writes_dcase_tsv_for_a_95_s_stereo_file(trained, long_wav, tmp_path, cli):
    code, out, err = cli("predict", str(trained), str(long_wav), "--out", str(tmp_path / "pred"))
    assert code == 0, err
    events = (tmp_path / "pred" / "events.tsv").read_text().splitlines()
    scenes = (tmp_path / "pred" / "scenes.tsv").read_text().splitlines()
    assert events[0].split("\t") == ["filename", "onset", "offset", "event_label", "score"]
    assert scenes[0].split("\t") == ["filename", "scene_label", "high", "low"]
    assert scenes[1].split("\t")[:2] == [str(long_wav), "low"] and len(scenes) == 2
    rows = [line.split("\t") for line in events[1:]]
    result = {"scene": "low", "duration": 95.0,
              "events": [{"onset": float(r[1]), "offset": float(r[2]), "event_label": r[3], "score": float(r[4])}
                         for r in rows]}
    check_long_file(result)


def test_predict_json_on_stdout_and_the_python_api_agree(trained, long_wav, cli):
    code, out, err = cli("predict", str(trained), str(long_wav), "--json")
    assert code == 0, err
    (from_cli,) = json.loads(out)
    check_long_file(from_cli)
    model = jasc.load(trained)
    assert model.predict(long_wav) == from_cli
    # An in-memory waveform ([samples, channels] or torch's [channels, samples]) gives the same events (the scores
    # differ a little: the file holds 16-bit samples).
    audio = long_recording()

    def spans(result):
        return [(e["onset"], e["offset"], e["event_label"]) for e in result["events"]]

    from_array = model.predict(audio, sample_rate=RATE)
    assert spans(from_array) == spans(from_cli) and from_array["scene"] == "low"
    assert model.predict(audio.T.copy(), sample_rate=RATE) == from_array
    with pytest.raises(DataError, match="sample_rate"):
        model.predict(audio)


def test_scores_gives_raw_stitched_frame_and_scene_scores(trained, long_wav):
    scores = jasc.load(trained).scores(long_wav)
    assert scores.event.shape == (95 * 8000 // 400, 2) and scores.scene.shape == (2,)
    assert scores.windows[0] == 0 and scores.windows[-1] == 85.0
    np.testing.assert_allclose(scores.scene, scores.scene_per_window.mean(0), rtol=1e-6)
    assert scores.scene.sum() == pytest.approx(1.0, abs=1e-5)


def test_bad_files_are_named_and_skipped_and_the_rest_finish(trained, tmp_path, cli):
    good = tmp_path / "good.wav"
    sf.write(good, long_recording(12.0, [(3.0, 3.5)]), RATE)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    silent = tmp_path / "zero_frames.wav"
    sf.write(silent, np.zeros((0, 2), dtype=np.float32), RATE)
    missing = tmp_path / "missing.wav"
    code, out, err = cli("predict", str(trained), str(good), str(text), str(empty), str(silent), str(missing),
                         "--json")
    assert code == 1
    assert [r["filename"] for r in json.loads(out)] == [str(good)]
    for path in (text, empty, silent, missing):
        assert f"skipped {path}" in err
    assert "4 of 5 files skipped" in err and "Traceback" not in err


def test_folders_and_globs_expand_to_audio_files(trained, tmp_path, cli):
    for name in ("a.wav", "b.flac"):
        sf.write(tmp_path / name, long_recording(3.0, []), RATE)
    (tmp_path / "readme.txt").write_text("not audio")
    code, out, err = cli("predict", str(trained), str(tmp_path), "--json")
    assert code == 0, err
    assert sorted(r["filename"].rsplit("/", 1)[1] for r in json.loads(out)) == ["a.wav", "b.flac"]
    code, out, _ = cli("predict", str(trained), str(tmp_path / "*.wav"), "--json")
    assert code == 0 and [r["filename"].rsplit("/", 1)[1] for r in json.loads(out)] == ["a.wav"]


def test_a_run_without_checkpoint_is_one_line_and_exit_2(trained, long_wav, tmp_path, cli):
    import shutil

    copy = tmp_path / "no_ckpt"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("*.pt"))
    code, out, err = cli("predict", str(copy), str(long_wav))
    assert code == 2 and "has no checkpoint" in err and str(copy) in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(RunError, match="no model 'teacher'"):
        jasc.load(trained, model="teacher")
