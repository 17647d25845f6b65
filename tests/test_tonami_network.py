"""The Tonami network components (001 Table II): shapes, configuration, parameter counts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from jasc_core import ConfigError, component
from jasc_core.model.pipeline import build_model
from jasc_core.testing import check_component
from jasc_tonami import BiGRUHead, TonamiCNN, TonamiScene

TINY_ENCODER = {"channels": [4, 4, 4]}
OFFICIAL_CODE = {
    "encoder": {"name": "tonami_cnn", "activation": "relu"},
    "heads": {
        "scene": {"name": "tonami_scene", "activation": "relu", "global_pool": "time"},
        "event": {"name": "bigru", "activation": "relu", "hidden_size": 64},
    },
}
TABLE_II = {"encoder": {"name": "tonami_cnn"}, "heads": {"scene": {"name": "tonami_scene"}, "event": {"name": "bigru"}}}
TUT = {"scene": 4, "event": 25}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- conformance -------------------------------------------------------------------------------------------------


def test_components_are_registered_and_conform():
    check_component(TonamiCNN)
    check_component(TonamiScene)
    check_component(BiGRUHead)
    check_component(TonamiScene, {"global_pool": "time", "activation": "relu"}, n_classes=4)
    assert component("encoder", "tonami_cnn") is TonamiCNN
    assert component("head", "tonami_scene") is TonamiScene
    assert component("head", "bigru") is BiGRUHead


# -- shapes ------------------------------------------------------------------------------------------------------


def test_encoder_maps_frames_by_features_to_pooled_feature_map():
    encoder = TonamiCNN(TINY_ENCODER, n_features=64)
    out = encoder(torch.randn(2, 30, 64))
    assert out.shape == (2, 4, 30, 2)  # frequency pooled 8 * 2 * 2 = 32, time untouched (Table II)
    assert (encoder.out_channels, encoder.out_features, encoder.time_stride) == (4, 2, 1)


def test_encoder_time_pooling_sets_time_stride():
    encoder = TonamiCNN({**TINY_ENCODER, "time_pools": [2, 1, 2]}, n_features=32)
    out = encoder(torch.randn(1, 40, 32))
    assert out.shape == (1, 4, 10, 1)
    assert encoder.time_stride == 4


@pytest.mark.parametrize(("global_pool", "fc_inputs"), [("time_frequency", 6), ("time", 6 * 3)])
def test_scene_head_returns_clip_logits(global_pool, fc_inputs):
    head = TonamiScene({"channels": [5, 6], "global_pool": global_pool}, task="scene", n_classes=4, in_channels=3,
                       in_features=3)
    assert head.classifier[0].in_features == fc_inputs
    logits = head(torch.randn(2, 3, 60, 3))
    assert logits.shape == (2, 4)


def test_scene_head_accepts_maps_shorter_than_its_time_pool():
    head = TonamiScene({"channels": [5, 6]}, n_classes=4, in_channels=3, in_features=2)
    assert head(torch.randn(2, 3, 7, 2)).shape == (2, 4)  # 7 frames < the 25-frame pool


def test_event_head_returns_frame_logits_and_undoes_time_stride():
    head = BiGRUHead({"hidden_size": 5}, n_classes=3, in_channels=4, in_features=2, time_stride=4)
    assert head.gru.input_size == 8  # channels x frequency bins per frame
    assert head(torch.randn(2, 4, 10, 2)).shape == (2, 40, 3)


def test_heads_output_logits_not_probabilities():
    torch.manual_seed(0)
    small = {"encoder": {"name": "tonami_cnn", **TINY_ENCODER},
             "heads": {"scene": {"name": "tonami_scene", "channels": [4, 4]}, "event": {"name": "bigru"}}}
    model = build_model(small, 32, {"scene": 3, "event": 2})
    with torch.no_grad():
        # A big input drives logits beyond [0, 1]; a softmax / sigmoid output could not leave it.
        outputs = model.eval()(100 * torch.randn(2, 50, 32))
    assert not torch.allclose(outputs["scene"].sum(-1), torch.ones(2))
    assert outputs["event"].min() < 0 or outputs["event"].max() > 1


@settings(max_examples=15, deadline=None)
@given(
    n_features=st.integers(8, 40),
    frames=st.integers(1, 45),
    freq_pools=st.lists(st.integers(1, 2), min_size=1, max_size=3),
    time_pool=st.integers(1, 3),
)
def test_joint_model_shapes_for_any_input_and_pooling(n_features, frames, freq_pools, time_pool):
    depth = len(freq_pools)
    block = {
        "encoder": {"name": "tonami_cnn", "channels": [2] * depth, "freq_pools": freq_pools,
                    "time_pools": [time_pool] + [1] * (depth - 1)},
        "heads": {"scene": {"name": "tonami_scene", "channels": [3]}, "event": {"name": "bigru", "hidden_size": 2}},
    }
    block["heads"]["scene"]["time_pools"] = [25]
    model = build_model(block, n_features, {"scene": 3, "event": 2}).eval()
    frames = max(frames, time_pool)  # at least one pooled frame
    with torch.no_grad():
        feature_map = model.encoder(torch.randn(1, frames, n_features))
        outputs = model(torch.randn(1, frames, n_features))
    assert feature_map.shape[1:] == (2, frames // time_pool, model.encoder.out_features)
    assert outputs["scene"].shape == (1, 3)
    assert outputs["event"].shape == (1, frames, 2)


# -- configuration -----------------------------------------------------------------------------------------------


def test_encoder_rejects_inputs_with_other_feature_counts():
    with pytest.raises(ValueError, match="built for 64 features"):
        TonamiCNN(TINY_ENCODER, n_features=64)(torch.randn(1, 10, 40))


def test_activation_is_configurable():
    leaky = TonamiCNN({**TINY_ENCODER, "negative_slope": 0.2})
    relu = TonamiCNN({**TINY_ENCODER, "activation": "relu"})
    assert [m.negative_slope for m in leaky.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 3
    assert sum(isinstance(m, nn.ReLU) for m in relu.modules()) == 3
    assert not any(isinstance(m, nn.LeakyReLU) for m in relu.modules())


def test_batch_norm_bias_and_dropout_are_configurable():
    plain = TonamiCNN({**TINY_ENCODER, "batch_norm": False, "conv_bias": False, "dropout": 0.5})
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(m.bias is None for m in plain.modules() if isinstance(m, nn.Conv2d))
    assert sum(isinstance(m, nn.Dropout) for m in plain.modules()) == 3
    head = BiGRUHead({"dropout": 0.3}, n_classes=2, in_channels=2, in_features=2)
    assert [m.p for m in head.modules() if isinstance(m, nn.Dropout)] == [0.3]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"channels": [4, 4], "freq_pools": [2, 2, 2]}, "one entry per conv block"),
        ({"kernel_size": 4}, "odd"),
        ({"activation": "gelu"}, "activation"),
        ({"freq_pools": [8, 8, 8]}, "pool 64 features down to nothing"),
        ({"chanels": [4]}, "chanels"),
    ],
)
def test_bad_encoder_configs_are_config_errors(block, message):
    with pytest.raises(ConfigError, match=message):
        TonamiCNN(block, n_features=64)


def test_head_refuses_the_other_task():
    with pytest.raises(ConfigError, match="serves scene"):
        TonamiScene(task="event", n_classes=3, in_channels=2, in_features=2)


def test_stated_class_count_must_match_the_data():
    with pytest.raises(ConfigError, match="n_classes is 4 but the data has 5"):
        TonamiScene({"n_classes": 4}, n_classes=5, in_channels=2, in_features=2)
    assert BiGRUHead({"n_classes": 5}, n_classes=5, in_channels=2, in_features=2).n_classes == 5


# -- parameter counts --------------------------------------------------------------------------------------------


def conv(c_in: int, c_out: int) -> int:
    return c_in * c_out * 9 + c_out + 2 * c_out  # 3x3 weights + bias + batch norm scale and shift


def gru(inputs: int, hidden: int) -> int:
    return 2 * 3 * (hidden * inputs + hidden * hidden + 2 * hidden)  # 2 directions, 3 gates, 2 bias vectors


def linear(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


def test_authors_code_config_counts_1328637_parameters():
    model = build_model(OFFICIAL_CODE, 64, TUT)
    assert n_params(model) == 1_328_637
    assert n_params(model.encoder) == conv(1, 128) + 2 * conv(128, 128) == 297_216
    assert n_params(model.heads["scene"]) == conv(128, 256) + conv(256, 256) + linear(512, 32) + linear(32, 4)
    assert n_params(model.heads["event"]) == gru(256, 64) + linear(128, 32) + linear(32, 25)


def test_table_ii_default_counts_1250429_parameters():
    model = build_model(TABLE_II, 64, TUT)
    by_hand = (conv(1, 128) + 2 * conv(128, 128)  # shared network
               + conv(128, 256) + conv(256, 256) + linear(256, 32) + linear(32, 4)  # scene layers
               + gru(256, 32) + linear(64, 32) + linear(32, 25))  # event layers
    assert n_params(model) == by_hand == 1_250_429
