"""Frozen embeddings (``with_embeddings``, cached per clip) and the ``fusion`` encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from jasc_core import ConfigError
from jasc_pretrained.embeddings import WithEmbeddings
from jasc_pretrained.fusion import FusionEncoder

TINY_BEATS = {"name": "beats", "allow_random_init": True, "layers": 1, "dim": 32, "ffn_dim": 64, "heads": 4,
              "embed_dim": 32}
BASE = {"name": "logmel", "sample_rate": 16000, "win_samples": 512, "hop_samples": 256, "n_mels": 16}


def build(tmp_path, **extra):
    torch.manual_seed(0)
    return WithEmbeddings({"base": BASE, "frozen_encoder": TINY_BEATS, "cache_dir": str(tmp_path), **extra})


def test_embeddings_are_appended_time_aligned_and_computed_once(tmp_path, monkeypatch):
    features = build(tmp_path)
    assert features.n_features == 16 + 32 and features.embedding_hop == pytest.approx(0.16)
    wave = torch.randn(3, 16000)
    calls = []
    original = features._compute
    monkeypatch.setattr(features, "_compute", lambda w: calls.append(len(w)) or original(w))
    out = features(wave)
    assert out.shape == (3, features.num_frames(16000), 48) and calls == [3]
    assert torch.equal(out[..., :16], features.base(wave))
    frozen_features, frozen_encoder = features._frozen
    with torch.no_grad():
        direct = frozen_encoder(frozen_features(wave)).mean(dim=3).transpose(1, 2)  # [B, 6, 32]
    # Base frame t (centre (t + 0.5) * 16 ms) takes embedding frame floor(centre / 160 ms), the last one at most.
    assert torch.allclose(out[:, 0, 16:], direct[:, 0], atol=1e-6)
    assert torch.allclose(out[:, 10, 16:], direct[:, 1], atol=1e-6)  # 168 ms
    assert torch.allclose(out[:, -1, 16:], direct[:, -1], atol=1e-6)
    again = features(torch.cat([wave[1:], torch.randn(1, 16000)]))  # two cached clips, one new
    assert calls == [3, 1] and torch.equal(again[:2], out[1:])
    # A new front end with the same frozen model (same seed) finds the embeddings on disk.
    other = build(tmp_path)
    assert other.model_key == features.model_key
    monkeypatch.setattr(other, "_compute", lambda w: pytest.fail("recomputed a cached clip"))
    assert torch.equal(other(wave), out)


def test_other_frozen_weights_get_another_key(tmp_path):
    first = build(tmp_path)
    torch.manual_seed(1)
    second = WithEmbeddings({"base": BASE, "frozen_encoder": TINY_BEATS, "cache_dir": str(tmp_path)})
    assert first.model_key != second.model_key


def test_frozen_model_is_not_trained_nor_saved_and_passes_on_its_stand_in(tmp_path):
    features = build(tmp_path, disk_cache=False)
    assert all(not name.startswith("_frozen") for name in features.state_dict())
    assert not list(features.parameters())  # logmel has buffers only; the frozen encoder is not a submodule
    assert "random weights" in features.stand_in


def test_fusion_pools_embeddings_to_the_map_frame_rate(tmp_path):
    encoder = FusionEncoder({"encoder": {"name": "desed_cnn"}, "embedding_dim": 32}, n_features=128 + 32).eval()
    assert encoder.out_channels == encoder.inner.out_channels
    features = torch.randn(2, 64, 160)
    with torch.no_grad():
        feature_map = encoder(features)
        inner = encoder.inner(features[..., :128])
    assert feature_map.shape == inner.shape
    pooled = F.adaptive_avg_pool1d(features[..., 128:].transpose(1, 2), inner.shape[2])
    joined = torch.cat([inner, pooled.unsqueeze(-1).expand(-1, -1, -1, inner.shape[3])], dim=1)
    with torch.no_grad():
        assert torch.allclose(feature_map, encoder.cat_tf(joined), atol=1e-6)


def test_fusion_needs_room_for_the_inner_encoder():
    with pytest.raises(ConfigError, match="embedding_dim"):
        FusionEncoder({"encoder": {"name": "desed_cnn"}, "embedding_dim": 768}, n_features=768)


def test_recipe_builds_with_random_frozen_weights(fakes, tmp_path, monkeypatch):
    from pathlib import Path

    from jasc_core.recipes.model import load_recipe

    monkeypatch.setenv("JASC_CACHE", str(tmp_path))
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "desed_beats_crnn_mean_teacher.yaml",
                         sets=["features.frozen_encoder.weights=null", "features.frozen_encoder.allow_random_init=true"])
    assert recipe.features.name == "with_embeddings" and recipe.model.encoder.name == "fusion"
