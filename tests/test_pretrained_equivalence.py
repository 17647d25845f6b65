"""jasc's BEATs and EfficientAT equal the official implementations (microsoft/unilm beats/, fschmid56/EfficientAT).

``tools/pretrained_equivalence.py`` loaded the state dict that ``seeded_state_dict`` draws from the recorded seed
into the official models (``strict=True``) and recorded their outputs on ``fixed_signal``; each test rebuilds
jasc's model from the seed alone, runs jasc's front end and encoder on the same signal and matches them to 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jasc_pretrained.beats import BeatsEncoder, BeatsFbank
from jasc_pretrained.efficientat import EfficientATEncoder, EfficientATMel
from jasc_pretrained.equivalence import fixed_signal, seeded_state_dict

FIXTURES = Path(__file__).parent / "fixtures" / "pretrained"
META = json.loads((FIXTURES / "meta.json").read_text())
TOLERANCE = 1e-4


def assert_close(name: str, ours: torch.Tensor, official: np.ndarray) -> None:
    ours = ours.detach().numpy()
    assert ours.shape == official.shape, f"{name}: shape {ours.shape} != official {official.shape}"
    error = float(np.abs(ours - official).max())
    assert error <= TOLERANCE, f"{name}: max |jasc - official| = {error:.3g} > {TOLERANCE}"


def check_beats(name: str, config: dict) -> None:
    recorded = np.load(FIXTURES / f"{name}.npz")
    encoder = BeatsEncoder({**config, "predictor_classes": 527, "allow_random_init": True}).eval()
    encoder.beats.load_state_dict(seeded_state_dict(encoder.beats, META["seed"]), strict=True)
    wave = torch.from_numpy(fixed_signal(*META["beats_signal"], 16000))
    with torch.no_grad():
        fbank = BeatsFbank().eval()(wave)
        feature_map = encoder(fbank)  # [B, C, time patches, mel patches]
        tokens = feature_map.permute(0, 2, 3, 1).flatten(1, 2)  # back to the time-major token sequence
        logits = encoder.beats.clip_logits(tokens)
    assert feature_map.shape[2:] == (fbank.shape[1] // 16, 8)
    assert tuple(tokens.shape) == tuple(recorded["tokens_shape"])
    assert_close("fbank", fbank[:, :20], recorded["fbank_head"])
    assert_close("tokens", tokens[:, :, :32], recorded["tokens_head"])
    assert_close("token mean", tokens.mean(dim=1), recorded["token_mean"])
    assert_close("AudioSet logits", logits, recorded["logits"])
    assert_close("AudioSet probabilities", torch.sigmoid(logits), recorded["probs"])
    assert sum(p.numel() for p in encoder.parameters()) == META["parameters"][name]["official_finetuned"]


def test_small_beats_matches_official():
    """Two layers of width 96: every code path of the full model (gated relative bias, log buckets beyond 80
    tokens, weight-normed position conv, DeepNorm, predictor), fast."""
    check_beats("beats_small", META["beats_small"])


@pytest.mark.slow
def test_beats_iter3_plus_matches_official():
    """The released size (12 layers, 768 wide, 90,311,792 parameters without the AudioSet predictor)."""
    check_beats("beats", {})


def test_beats_clip_outputs_are_the_token_mean_and_predictor():
    encoder = BeatsEncoder({**META["beats_small"], "predictor_classes": 5, "allow_random_init": True}).eval()
    fbank = torch.randn(2, 40, 128)
    with torch.no_grad():
        tokens = encoder.beats(fbank)
        clip = encoder.clip_outputs(fbank)
    assert torch.allclose(clip["embedding"], tokens.mean(dim=1), atol=1e-6)
    assert torch.allclose(clip["logits"], encoder.beats.predictor(tokens).mean(dim=1), atol=1e-6)


@pytest.mark.parametrize("variant", ["mn04", "mn10"])
def test_efficientat_matches_official(variant):
    recorded = np.load(FIXTURES / f"efficientat_{variant}.npz")
    encoder = EfficientATEncoder({"width_mult": {"mn04": 0.4, "mn10": 1.0}[variant], "allow_random_init": True}).eval()
    encoder.mn.load_state_dict(seeded_state_dict(encoder.mn, META["seed"]), strict=True)
    wave = torch.from_numpy(fixed_signal(*META["efficientat_signal"], 32000))
    with torch.no_grad():
        features = EfficientATMel().eval()(wave)  # [B, T, mel]
        feature_map = encoder(features)  # [B, C, T', mel']
        clip = encoder.clip_outputs(features)
    official_map_shape = tuple(recorded["map_shape"])  # [B, C, mel', time']
    assert feature_map.shape == (official_map_shape[0], official_map_shape[1], official_map_shape[3],
                                 official_map_shape[2])
    assert (encoder.out_channels, encoder.out_features) == (official_map_shape[1], official_map_shape[2])
    assert_close("mel", features.transpose(1, 2)[:, :, :20], recorded["mel_head"])
    assert_close("feature map", feature_map.transpose(2, 3)[:, :48], recorded["map_head"])
    assert_close("feature map channel mean", feature_map.transpose(2, 3).mean(dim=1), recorded["map_mean"])
    assert_close("AudioSet logits", clip["logits"], recorded["logits"])
    assert_close("embedding", clip["embedding"], recorded["embedding"])


@pytest.mark.parametrize("variant", ["mn04", "mn10"])
def test_efficientat_parameter_counts_equal_the_official_models(variant):
    encoder = EfficientATEncoder({"width_mult": {"mn04": 0.4, "mn10": 1.0}[variant], "allow_random_init": True})
    assert sum(p.numel() for p in encoder.parameters()) == META["parameters"][variant]["official"]
