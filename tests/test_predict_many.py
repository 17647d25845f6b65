"""``jasc predict`` over many files: windows batched across files, decoding workers, long files streamed block by
block; results equal to predicting file by file (a numpy stand-in model, no training)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import jasc_core.inference.file_stream as file_stream
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.data.audio import read_audio
from jasc_core.inference.file_predictor import FilePredictor
from jasc_core.inference.file_stream import predict_files, stream_mono, windows_from_chunks
from jasc_core.inference.windows import FrameGrid

RATE, HOP = 8000, 400


class Loudness(FilePredictor):
    """Frame score = loudness of the frame (one event class), scene = mean loudness; counts its batches."""

    def __init__(self) -> None:
        super().__init__(grid=FrameGrid(RATE, HOP, lambda n: n // HOP),
                         tasks={t: TASK_DESCRIPTIONS[t].outputs() for t in ("scene", "event")},
                         labels={"scene": ["loud", "quiet"], "event": ["burst"]}, thresholds=0.5, postprocess=None,
                         window_seconds=2.0, hop_seconds=1.0)
        self.calls = 0

    def score_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        frames = batch[:, : batch.shape[1] // HOP * HOP].reshape(len(batch), -1, HOP)
        loud = np.clip(np.abs(frames).mean(-1) * 2, 0, 1)[..., None].astype(np.float32)
        return {"scene": np.stack([loud.mean((1, 2)), 1 - loud.mean((1, 2))], axis=1), "event": loud}

    def to_events(self, frame_scores, labels, hop, thresholds):
        from jasc_core.inference.postprocess import scores_to_events

        return scores_to_events(frame_scores, labels, hop, thresholds)


def bursts(seconds: float, rate: int, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wave = 0.02 * rng.standard_normal(int(seconds * rate))
    for onset in rng.uniform(0, seconds - 0.5, 3):
        wave[int(onset * rate): int((onset + 0.4) * rate)] += 0.8
    return np.stack([wave] * channels, 1) if channels > 1 else wave


@given(n=st.integers(1, 5000), length=st.integers(1, 900), hop=st.integers(1, 900), chunk=st.integers(1, 700))
@settings(max_examples=60, deadline=None)
def test_streamed_windows_are_the_sliced_windows(n, length, hop, chunk):
    signal = np.arange(n, dtype=np.float32)
    starts = list(range(0, max(1, n - length + 1), hop))
    chunks = iter([signal[i: i + chunk] for i in range(0, n, chunk)])
    got = list(windows_from_chunks(chunks, starts, min(length, n), n))
    assert len(got) == len(starts)
    for start, window in zip(starts, got, strict=True):
        np.testing.assert_array_equal(window, signal[start: start + min(length, n)])


def test_a_streamed_file_is_the_decoded_file(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, bursts(7.3, 44100, 0, channels=2).astype(np.float32), 44100, subtype="FLOAT")
    streamed = np.concatenate(list(stream_mono(path, RATE, block_seconds=0.7)))
    np.testing.assert_allclose(streamed, read_audio(path, RATE), atol=1e-6)


@pytest.mark.parametrize("workers", [0, 1])
def test_many_files_batched_across_files_give_the_per_file_results(tmp_path, monkeypatch, workers):
    paths = []
    for i, seconds in enumerate([10.0, 1.5, 4.0, 30.0, 6.0]):
        path = tmp_path / f"f{i}.wav"
        sf.write(path, bursts(seconds, 16000 if i % 2 else RATE, i).astype(np.float32), 16000 if i % 2 else RATE)
        paths.append(path)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    paths.insert(2, broken)
    monkeypatch.setattr(file_stream, "LONG_FILE_SECONDS", 20.0)  # the 30-s file is streamed in 0.5-s blocks
    monkeypatch.setattr(file_stream, "BLOCK_SECONDS", 0.5)
    model, lines = Loudness(), []
    results, skipped, throughput = predict_files(model, paths, lines.append, batch_size=8, workers=workers)
    assert skipped == [broken] and "broken.wav" in lines[0]
    expected = [Loudness().predict(p) for p in paths if p != broken]
    assert [r["filename"] for r in results] == [e["filename"] for e in expected]
    for got, want in zip(results, expected, strict=True):
        assert got["scene"] == want["scene"] and got["windows"] == want["windows"]
        assert got["scene_probabilities"] == pytest.approx(want["scene_probabilities"], abs=1e-5)
        assert [(e["onset"], e["offset"]) for e in got["events"]] == [(e["onset"], e["offset"]) for e in want["events"]]
    windows = sum(r["windows"] for r in results)
    # 1.5-s file: a short window of its own; the rest in batches of 8 across files
    assert model.calls <= windows // 8 + 3 and throughput.windows == windows and throughput.files == 5
    assert throughput.audio_seconds == pytest.approx(51.5, abs=0.01) and "audio-hours/hour" in throughput.line()
