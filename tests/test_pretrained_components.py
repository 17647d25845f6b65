"""The jasc_pretrained components: conformance, sizes the model builder relies on, and front-end frame counts."""

from __future__ import annotations

import pytest
import torch

from jasc_core import ConfigError
from jasc_pretrained.beats import BeatsEncoder, BeatsFbank
from jasc_pretrained.efficientat import EfficientATEncoder, EfficientATMel
from jasc_pretrained.kaldi import kaldi_mel_banks

SMALL_BEATS = {"allow_random_init": True, "layers": 1, "dim": 32, "ffn_dim": 64, "heads": 4, "embed_dim": 32}


@pytest.mark.parametrize(("cls", "block", "kwargs"), [
    (BeatsFbank, None, {}),
    (EfficientATMel, None, {}),
    (BeatsEncoder, SMALL_BEATS, {"n_features": 128}),
    (EfficientATEncoder, {"width_mult": 0.1, "allow_random_init": True}, {"n_features": 64}),
])
def test_conforms(jasc_conformance, cls, block, kwargs):
    jasc_conformance(cls, block, **kwargs)


@pytest.mark.parametrize("samples", [400, 401, 16000, 23456])
def test_beats_fbank_frames_match_num_frames(samples):
    extractor = BeatsFbank()
    assert extractor(torch.zeros(1, samples)).shape == (1, extractor.num_frames(samples), 128)


@pytest.mark.parametrize("samples", [1000, 32000, 45679])
def test_efficientat_mel_frames_match_num_frames(samples):
    extractor = EfficientATMel()
    assert extractor(torch.zeros(1, samples)).shape == (1, extractor.num_frames(samples), 128)


@pytest.mark.parametrize(("frames", "n_features"), [(100, 128), (37, 64), (64, 40)])
def test_efficientat_map_has_the_announced_sizes(frames, n_features):
    encoder = EfficientATEncoder({"width_mult": 0.1, "allow_random_init": True}, n_features=n_features).eval()
    with torch.no_grad():
        feature_map = encoder(torch.randn(2, frames, n_features))
    assert feature_map.shape[1] == encoder.out_channels
    assert feature_map.shape[3] == encoder.out_features
    assert feature_map.shape[2] == -(-frames // encoder.time_stride)  # ceil: every strided conv pads


def test_beats_map_is_time_major_patches():
    encoder = BeatsEncoder(SMALL_BEATS).eval()
    with torch.no_grad():
        feature_map = encoder(torch.randn(2, 50, 128))
    assert feature_map.shape == (2, 32, 3, 8)
    assert (encoder.out_channels, encoder.out_features, encoder.time_stride) == (32, 8, 16)


def test_beats_needs_whole_patches():
    with pytest.raises(ConfigError, match="multiple of 16"):
        BeatsEncoder(SMALL_BEATS, n_features=100)


def test_kaldi_mel_banks_are_triangles_within_the_band():
    banks = kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0)
    assert banks.shape == (128, 512)
    assert float(banks.max()) <= 1.0 and float(banks.min()) == 0.0
    assert bool((banks[:, 481:] == 0).all())  # bins above 15 kHz (481 * 31.25 Hz = 15031 Hz) get no weight
    assert bool((banks.sum(dim=1) > 0).all())


def test_beats_training_skips_layers_and_scales_gradients():
    torch.manual_seed(0)
    encoder = BeatsEncoder({**SMALL_BEATS, "layers": 2, "layerdrop": 0.0, "layer_grad_decay": 0.5})
    features = torch.randn(1, 32, 128, requires_grad=True)
    encoder.train()(features).sum().backward()
    decayed = features.grad.clone()
    features.grad = None
    encoder.beats.encoder.layer_grad_decay = 1.0
    encoder(features).sum().backward()
    # Two layers, each input's gradient times 0.5: the patch input gets 0.25 of the undecayed gradient.
    assert torch.allclose(decayed, 0.25 * features.grad, rtol=1e-4, atol=1e-7)


def test_layer_wise_lr_decay_gives_each_layer_its_own_optimiser_group():
    from types import SimpleNamespace

    from jasc_core.training.optim import build_optimizer

    encoder = BeatsEncoder({**SMALL_BEATS, "layers": 2, "lr_decay": 0.5, "predictor_classes": 3})
    beats = encoder.beats
    scales = {name: getattr(p, "lr_scale", None) for name, p in beats.named_parameters()}
    assert scales["predictor.weight"] == 1.0
    assert scales["encoder.layers.1.fc1.weight"] == 0.5 and scales["encoder.layers.0.fc1.weight"] == 0.25
    assert scales["patch_embedding.weight"] == scales["encoder.pos_conv.0.weight_g"] == 0.125
    assert scales["encoder.layers.0.self_attn.relative_attention_bias.weight"] == 0.125  # shared: the stem's
    head = torch.nn.Linear(4, 2)
    config = SimpleNamespace(optimizer=SimpleNamespace(name="adamw", lr=0.01, weight_decay=0.1))
    optimizer = build_optimizer(config, [*head.parameters(), *encoder.parameters()], [])
    lrs = [group["lr"] for group in optimizer.param_groups]
    assert lrs == pytest.approx([0.01, 0.005, 0.0025, 0.00125])  # unscaled first: the LR the loop logs
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 2 + len(list(encoder.parameters()))
    mn = EfficientATEncoder({"width_mult": 0.1, "allow_random_init": True, "lr_decay": 0.9})
    assert mn.mn.features[0][0].weight.lr_scale == pytest.approx(0.9 ** 17)
    assert mn.mn.features[16][0].weight.lr_scale == pytest.approx(0.9) and mn.mn.classifier[2].weight.lr_scale == 1.0


def test_without_lr_scales_the_optimiser_has_one_model_group():
    from types import SimpleNamespace

    from jasc_core.training.optim import build_optimizer

    config = SimpleNamespace(optimizer=SimpleNamespace(name="adam", lr=0.01, weight_decay=0.0))
    optimizer = build_optimizer(config, list(torch.nn.Linear(3, 2).parameters()), [torch.nn.Parameter(torch.zeros(2))])
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.01]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.0]
