"""The ``logmel`` feature extractor: frames, backends, librosa agreement, normalisation, config errors."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core import ConfigError, DataError, component
from jasc_core.testing import check_component
from jasc_features import LogMel

SR = 16000
SMALL = {"sample_rate": SR, "win_ms": 40, "hop_ms": 20, "n_mels": 40}  # n_fft 1024, hop 320: fast


def noise(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, samples, generator=generator)


def mel_energy(extractor: LogMel, waveform: torch.Tensor) -> torch.Tensor:
    """The mel energies before the log, in float64."""
    return extractor.log_mel(waveform).double().exp() - extractor.config.log_offset


# -- registration and conformance -------------------------------------------------------------------------------------


def test_conforms_to_the_plugin_contract() -> None:
    check_component(LogMel)
    check_component(LogMel, {"backend": "torch", "n_mels": 40, "win_samples": 1024, "hop_samples": 512})
    assert component("features", "logmel") is LogMel


def test_defaults_are_the_papers_features() -> None:
    extractor = LogMel()
    assert (extractor.sample_rate, extractor.win_length, extractor.hop_length) == (44100, 1764, 882)
    assert extractor.n_fft == 2048  # next power of two >= 1764
    assert extractor.hop_seconds == pytest.approx(0.02)
    assert extractor.n_features == 64
    out = extractor(noise(2, 441000))
    assert out.shape == (2, 500, 64) and out.dtype == torch.float32
    assert extractor.num_frames(441000) == 500


def test_window_and_hop_in_samples() -> None:
    extractor = LogMel({"win_samples": 1000, "hop_samples": 500})
    assert (extractor.win_length, extractor.hop_length, extractor.n_fft) == (1000, 500, 1024)
    assert extractor.hop_seconds == 500 / 44100


# -- frames -----------------------------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    sample_rate=st.sampled_from([8000, 16000, 22050, 44100]),
    hop_ms=st.floats(5.0, 40.0),
    window_factor=st.floats(1.0, 3.0),  # a hop longer than the window is a config error
    seconds=st.floats(0.3, 1.5),
)
def test_frame_count_is_one_per_whole_hop(sample_rate, hop_ms, window_factor, seconds) -> None:
    extractor = LogMel({"sample_rate": sample_rate, "hop_ms": hop_ms, "win_ms": hop_ms * window_factor,
                        "n_mels": 16, "backend": "torch"})
    samples = round(seconds * sample_rate)
    out = extractor(noise(1, samples))
    assert out.shape == (1, samples // extractor.hop_length, 16) == (1, extractor.num_frames(samples), 16)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("backend", ["torch", "nnaudio"])
@pytest.mark.parametrize("fraction", [0.15, 0.5, 0.85])
def test_frame_t_stands_for_t_hop_to_t_plus_one_hop(backend, fraction) -> None:
    # A click inside [t*hop, (t+1)*hop) must peak in frame t: the label convention the engine's event rolls use.
    extractor = LogMel({**SMALL, "backend": backend})
    hop = extractor.hop_length
    waveform = torch.zeros(1, SR)
    for frame in (0, 7, 30, 49):
        waveform.zero_()
        click = frame * hop + int(fraction * hop)
        waveform[0, click] = 1.0
        energy = mel_energy(extractor, waveform)[0].sum(dim=-1)
        assert int(energy.argmax()) == frame
        start, end = extractor.frame_bounds(frame)
        assert start <= click / SR < end


def test_too_short_or_misshaped_waveforms_are_errors() -> None:
    extractor = LogMel(SMALL)
    with pytest.raises(DataError, match="too short"):
        extractor(torch.zeros(1, 100))
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        extractor(torch.zeros(SR))


# -- backends ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        {},
        {"power": 1.0, "mel_scale": "htk", "fmin": 50.0, "fmax": 14000.0, "n_mels": 128},
        {"sample_rate": SR, "win_samples": 401, "hop_samples": 160, "n_fft": 512, "n_mels": 40},
    ],
)
def test_backends_agree_on_noise(block) -> None:
    waveform = noise(2, block.get("sample_rate", 44100), seed=1)
    by_torch = mel_energy(LogMel({**block, "backend": "torch"}), waveform)
    by_nnaudio = mel_energy(LogMel({**block, "backend": "nnaudio"}), waveform)
    relative = ((by_torch - by_nnaudio).abs() / by_torch.abs()).max()
    assert relative < 1e-4


@pytest.mark.parametrize("frequency", [440.0, 1000.0, 7000.0])
def test_backends_agree_on_a_sine(frequency) -> None:
    # A sine leaves most bands ~100 dB below its peak, where float32 round-off of either STFT (~1e-6 of the peak,
    # measured against a float64 STFT) dominates; the agreement is 1e-4 relative above that floor.
    t = torch.arange(44100, dtype=torch.float64) / 44100
    waveform = (0.5 * torch.sin(2 * math.pi * frequency * t)).float()[None]
    by_torch = mel_energy(LogMel({"backend": "torch"}), waveform)
    by_nnaudio = mel_energy(LogMel({"backend": "nnaudio"}), waveform)
    peak = float(by_torch.max())
    torch.testing.assert_close(by_nnaudio, by_torch, rtol=1e-4, atol=1e-5 * peak)
    loud = by_torch > peak * 1e-6  # bands within 60 dB of the peak
    assert ((by_torch - by_nnaudio).abs() / by_torch)[loud].max() < 1e-4


def test_auto_backend_is_torch_on_cpu_and_nnaudio_on_cuda() -> None:
    extractor = LogMel({"backend": "auto"})
    assert extractor.backend_for(torch.device("cpu")) == "torch"
    assert extractor.backend_for(torch.device("cuda")) == "nnaudio"
    assert extractor.nnaudio_stft is None  # nnAudio is only built on the first CUDA batch
    assert LogMel({"backend": "nnaudio"}).backend_for(torch.device("cpu")) == "nnaudio"


def test_auto_backend_builds_nnaudio_lazily(monkeypatch) -> None:
    # What the first CUDA batch does, played on the CPU: the lazily built nnAudio STFT gives the same features.
    extractor = LogMel({**SMALL, "backend": "auto"})
    waveform = noise(2, SR)
    by_torch = extractor(waveform)
    monkeypatch.setattr(extractor, "backend_for", lambda device: "nnaudio")
    with torch.inference_mode():
        by_nnaudio = extractor(waveform)
    assert extractor.nnaudio_stft is not None
    torch.testing.assert_close(by_nnaudio, by_torch, rtol=0, atol=1e-4)
    assert set(extractor.state_dict()) == {"norm_mean", "norm_std", "norm_fitted"}


def test_state_dict_does_not_depend_on_the_backend() -> None:
    keys = {backend: set(LogMel({**SMALL, "backend": backend}).state_dict()) for backend in ("torch", "nnaudio")}
    assert keys["torch"] == keys["nnaudio"] == {"norm_mean", "norm_std", "norm_fitted"}


# -- librosa ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [{}, {"sample_rate": SR, "n_mels": 40, "fmin": 40.0, "fmax": 7600.0, "power": 1.0}])
def test_log_mel_equals_librosa_on_the_same_frames(block) -> None:
    extractor = LogMel({**block, "backend": "torch"})
    waveform = noise(2, extractor.sample_rate, seed=2)
    padded = extractor._padded(waveform).squeeze(1).double().numpy()
    cfg = extractor.config
    reference = librosa.feature.melspectrogram(
        y=padded, sr=extractor.sample_rate, n_fft=extractor.n_fft, hop_length=extractor.hop_length,
        win_length=extractor.win_length, window="hann", center=False, power=cfg.power, n_mels=cfg.n_mels,
        fmin=cfg.fmin, fmax=cfg.fmax, htk=False, norm="slaney",
    )
    reference = np.log(reference + cfg.log_offset).transpose(0, 2, 1)
    np.testing.assert_allclose(extractor.log_mel(waveform).numpy(), reference, atol=1e-4)


def test_frames_are_librosas_centred_frames_shifted_by_half_a_hop() -> None:
    # Our frame t is centred at t*hop + hop//2, librosa's centred frame t at t*hop: on the signal advanced by
    # hop//2 they coincide (away from the edges, where the padding differs).
    extractor = LogMel({**SMALL, "backend": "torch"})
    hop = extractor.hop_length
    waveform = noise(1, 2 * SR, seed=3)
    reference = librosa.feature.melspectrogram(
        y=waveform[0, hop // 2 :].double().numpy(), sr=SR, n_fft=extractor.n_fft, hop_length=hop,
        win_length=extractor.win_length, center=True, pad_mode="reflect", power=2.0, n_mels=40,
    )
    reference = np.log(reference + extractor.config.log_offset).T
    ours = extractor.log_mel(waveform)[0].numpy()
    np.testing.assert_allclose(ours[3:-3], reference[3 : len(ours) - 3], atol=1e-4)


# -- normalisation ----------------------------------------------------------------------------------------------------


def training_batches() -> list[torch.Tensor]:
    # Batches of different sizes and lengths, with a level that differs per batch.
    return [noise(3, SR, seed=10), 0.3 * noise(1, 2 * SR, seed=11), 2.0 * noise(2, SR // 2, seed=12)]


def test_fitted_statistics_are_those_of_all_training_frames() -> None:
    extractor = LogMel(SMALL)
    assert not bool(extractor.norm_fitted)
    batches = training_batches()
    extractor.fit_normalization(iter(batches))  # a one-shot iterator: the fit streams
    frames = torch.cat([extractor.log_mel(b).reshape(-1, 40) for b in batches]).double()
    torch.testing.assert_close(extractor.norm_mean.double(), frames.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(extractor.norm_std.double(), frames.std(0, unbiased=False), rtol=1e-5, atol=1e-6)
    assert bool(extractor.norm_fitted)
    normalised = torch.cat([extractor(b).reshape(-1, 40) for b in batches]).double()
    torch.testing.assert_close(normalised.mean(0), torch.zeros(40, dtype=torch.float64), rtol=0, atol=1e-4)
    torch.testing.assert_close(normalised.std(0, unbiased=False), torch.ones(40, dtype=torch.float64), rtol=1e-4,
                               atol=0)


def test_statistics_travel_in_the_state_dict() -> None:
    fitted = LogMel(SMALL)
    fitted.fit_normalization(training_batches())
    state = fitted.state_dict()
    assert {"norm_mean", "norm_std", "norm_fitted"} <= set(state)
    restored = LogMel(SMALL)
    waveform = noise(2, SR, seed=20)
    assert not torch.allclose(restored(waveform), fitted(waveform))
    restored.load_state_dict(state)
    assert bool(restored.norm_fitted)
    torch.testing.assert_close(restored(waveform), fitted(waveform), rtol=0, atol=0)


def test_constant_band_is_centred_not_blown_up() -> None:
    extractor = LogMel(SMALL)
    extractor.fit_normalization([torch.zeros(2, SR)])  # every band is log(log_offset), std 0
    out = extractor(torch.zeros(1, SR))
    assert torch.isfinite(out).all() and out.abs().max() == 0


def test_normalize_false_leaves_features_raw() -> None:
    extractor = LogMel({**SMALL, "normalize": False})
    extractor.fit_normalization(training_batches())
    assert not bool(extractor.norm_fitted)
    waveform = noise(1, SR)
    torch.testing.assert_close(extractor(waveform), extractor.log_mel(waveform))


def test_fitting_on_no_audio_is_an_error() -> None:
    with pytest.raises(DataError, match="no training audio"):
        LogMel(SMALL).fit_normalization([])


# -- precision --------------------------------------------------------------------------------------------------------


def test_bf16_inputs_autocast_and_bf16_modules_give_float32_features() -> None:
    extractor = LogMel(SMALL)
    waveform = noise(2, SR)
    reference = extractor(waveform)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(extractor(waveform), reference)
    from_bf16 = extractor(waveform.bfloat16())
    assert from_bf16.dtype == torch.float32
    torch.testing.assert_close(from_bf16, extractor(waveform.bfloat16().float()), rtol=0, atol=0)
    extractor.to(torch.bfloat16)  # a model cast wholesale: the filters are rebuilt in float32, exactly
    torch.testing.assert_close(extractor(waveform), reference, rtol=0, atol=0)


def test_filters_rebuilt_during_inference_serve_training_afterwards() -> None:
    extractor = LogMel({**SMALL, "backend": "nnaudio"}).to(torch.bfloat16)
    with torch.inference_mode():
        extractor(noise(1, SR))  # rebuilds the float32 filters here
    waveform = noise(1, SR).requires_grad_()
    extractor(waveform).sum().backward()  # inference tensors would refuse to be saved for backward
    assert waveform.grad is not None and torch.isfinite(waveform.grad).all()

# -- config -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"hop_ms": -20}, "hop_ms"),
        ({"hop_ms": 0.001}, "hop_ms"),
        ({"win_samples": -1}, "win_samples"),
        ({"fmax": 30000.0}, "fmax"),
        ({"fmin": 25000.0}, "fmin"),
        ({"fmin": 8000.0, "fmax": 4000.0}, "fmax"),
        ({"n_fft": 1024}, "n_fft"),
        ({"hop_ms": 10, "hop_samples": 441}, "hop_samples"),
        ({"n_mels": 0}, "n_mels"),
        ({"n_mels": 128, "win_samples": 128, "hop_samples": 64, "n_fft": 128}, "n_mels"),
        ({"log_offset": 0}, "log_offset"),
        ({"power": -1}, "power"),
        ({"backend": "cuda"}, "backend"),
        ({"mel_scale": "bark"}, "mel_scale"),
        ({"n_mel": 64}, "n_mel"),
    ],
)
def test_bad_config_names_the_field(block, field) -> None:
    with pytest.raises(ConfigError, match=rf"features\b.*{field}") as caught:
        LogMel(block)
    assert "features" in str(caught.value)


# -- GPU --------------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_backends_agree_on_cuda_and_with_the_cpu() -> None:
    # cuDNN convolutions use TF32 by default and a recipe may allow it for matmuls: the extractor must still compute
    # in full float32.
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        waveform = noise(4, 441000, seed=5)
        on_cpu = mel_energy(LogMel({"backend": "torch"}), waveform)
        for backend in ("torch", "nnaudio", "auto"):
            extractor = LogMel({"backend": backend}).cuda()
            on_gpu = mel_energy(extractor, waveform.cuda()).cpu()
            relative = ((on_gpu - on_cpu).abs() / on_cpu.abs()).max()
            assert relative < 1e-4, (backend, float(relative))
        assert extractor.nnaudio_stft is not None  # "auto" used nnAudio on CUDA
    finally:
        torch.set_float32_matmul_precision(previous)



# -- the CP-Mobile front end and the torchaudio backend ----------------------------------------------------------------

CPMOBILE_FRONT_END = {"sample_rate": 32000, "n_fft": 4096, "win_samples": 3072, "hop_samples": 500, "n_mels": 256,
                      "mel_scale": "htk", "mel_norm": "none", "center": True, "log_offset": 1e-5, "normalize": False}


def _torchaudio_or_reason():
    try:
        import torchaudio
    except Exception as exc:  # ImportError, or OSError from a CUDA wheel beside the CPU torch
        return None, f"torchaudio does not import beside torch {torch.__version__}: {exc}"
    return torchaudio, ""


def test_cpmobile_front_end_gives_65_frames_per_second_like_centred_stft() -> None:
    extractor = LogMel({**CPMOBILE_FRONT_END, "backend": "torch"})
    waveform = torch.randn(2, 32000, generator=torch.Generator().manual_seed(0))
    features = extractor(waveform)
    assert features.shape == (2, 65, 256) and extractor.num_frames(32000) == 65
    # The same as torch.stft's own centred framing (reflect padding n_fft // 2), peak-1 HTK filters, log(x + 1e-5).
    spec = torch.stft(waveform, 4096, hop_length=500, win_length=3072, window=torch.hann_window(3072),
                      center=True, pad_mode="reflect", return_complex=True).abs().square()
    mel = torch.tensor(extractor._mel_basis(), dtype=torch.float32) @ spec
    torch.testing.assert_close(features, torch.log(mel + 1e-5).transpose(1, 2), rtol=1e-4, atol=1e-4)


def test_unnormalised_filters_peak_at_one() -> None:
    from jasc_features.mel import mel_filterbank

    weights = mel_filterbank(32000, 4096, 256, scale="htk", norm="none")
    assert weights.max() == pytest.approx(1.0, abs=0.02) and weights.max(axis=1).min() > 0.5


def test_torchaudio_backend_agrees_with_torch_backend() -> None:
    torchaudio, reason = _torchaudio_or_reason()
    if torchaudio is None:
        pytest.skip(reason)
    waveform = torch.randn(2, 32000, generator=torch.Generator().manual_seed(1))
    by_torch = LogMel({**CPMOBILE_FRONT_END, "backend": "torch"})(waveform)
    by_torchaudio = LogMel({**CPMOBILE_FRONT_END, "backend": "torchaudio"})(waveform)
    torch.testing.assert_close(by_torchaudio, by_torch, rtol=1e-3, atol=1e-3)


def test_torchaudio_backend_says_why_it_cannot_run() -> None:
    torchaudio, _ = _torchaudio_or_reason()
    if torchaudio is not None:
        pytest.skip("torchaudio imports here")
    with pytest.raises(ConfigError, match="torchaudio does not import"):
        LogMel({**CPMOBILE_FRONT_END, "backend": "torchaudio"})(torch.zeros(1, 32000))
