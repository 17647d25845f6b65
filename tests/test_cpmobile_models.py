"""jasc_cpmobile: conformance, the reference counts (DCASE baselines) and 003 Table 2 within tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchinfo

from jasc_core import ConfigError
from jasc_core.model.complexity import profile_recipe
from jasc_core.model.pipeline import build_model
from jasc_core.testing import check_component
from jasc_cpmobile import AttentionSceneHead, CPMobile, CPMobileClassifier, DesedCNN, RNNEventHead
from jasc_cpmobile.cpmobile import CPMobileBlock, make_divisible

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
BASELINE = {"encoder": {"name": "cpmobile"}, "heads": {"scene": {"name": "cpmobile_classifier"}}}
DESED_CRNN = {"encoder": {"name": "desed_cnn"},
              "heads": {"event": {"name": "rnn", "hidden_size": 128, "num_layers": 2, "clip_output": "attention"}}}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- conformance --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "block", "kwargs"), [
    (CPMobile, {}, {"n_features": 64}),
    (CPMobile, {"grn": True, "n_blocks": [1, 1], "strides": {"b2": [2, 2]}}, {"n_features": 32}),
    (DesedCNN, {}, {"n_features": 128}),
    (DesedCNN, {"channels": [4, 8], "pools": [[2, 4], [1, 4]], "activation": "relu"}, {"n_features": 64}),
    (CPMobileClassifier, {}, {}),
    (AttentionSceneHead, {}, {}),
    (AttentionSceneHead, {"attention_units": None}, {}),
    (RNNEventHead, {"hidden_size": 4}, {}),
    (RNNEventHead, {"hidden_size": 4, "clip_output": "attention"}, {}),
])
def test_components_conform(cls, block, kwargs):
    check_component(cls, block, **kwargs)


# -- the DCASE reference counts --------------------------------------------------------------------------------------


def test_dcase2024_task1_baseline_counts_61148_params_and_29419156_macs():
    model = build_model(BASELINE, 256, {"scene": 10})
    summary = torchinfo.summary(model, input_size=(1, 65, 256), verbose=0)  # 1 s of the front end: 65 x 256
    assert n_params(model) == summary.total_params == 61_148
    assert summary.total_mult_adds == 29_419_156


def test_baseline_channels_and_block_types_follow_the_reference():
    encoder = CPMobile({}, n_features=256)
    assert [make_divisible(32 * 1.8 ** s, 8) for s in range(3)] == [32, 56, 104]
    blocks = [m for m in encoder.modules() if isinstance(m, CPMobileBlock)]
    assert [b.kind for b in blocks] == ["standard", "standard", "spatial_downsampling", "transition", "standard",
                                        "transition"]
    assert (encoder.out_channels, encoder.out_features, encoder.time_stride) == (104, 32, 8)
    assert encoder(torch.zeros(2, 65, 256)).shape == (2, 104, 9, 32)


def test_grn_starts_as_identity_and_adds_two_parameters_per_block():
    plain, with_grn = CPMobile({}, n_features=64), CPMobile({"grn": True}, n_features=64)
    assert n_params(with_grn) - n_params(plain) == 2 * 6
    with_grn.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 40, 64)
    torch.testing.assert_close(with_grn.eval()(x), plain.eval()(x))


def test_desed_2023_crnn_counts_1112420_params():
    model = build_model(DESED_CRNN, 128, {"event": 10})
    assert n_params(model) == 1_112_420
    assert (model.encoder.out_channels, model.encoder.out_features, model.encoder.time_stride) == (128, 1, 4)


def test_stride_of_a_block_that_does_not_exist_is_an_error():
    with pytest.raises(ConfigError, match=r"strides name \['b9'\] but there are only 6 blocks"):
        CPMobile({"strides": {"b9": [2, 2]}}, n_features=64)


# -- the head output contract ----------------------------------------------------------------------------------------


def test_weak_output_is_a_logit_of_desed_attention_pooling():
    head = RNNEventHead({"hidden_size": 8, "clip_output": "attention", "dropout": 0.0}, task="event", n_classes=3,
                        in_channels=4, in_features=2, time_stride=4).eval()
    out = head(torch.randn(2, 4, 5, 2))
    assert set(out) == {"frame", "clip"}
    assert out["frame"].shape == (2, 20, 3)  # back at the feature frame rate
    assert out["clip"].shape == (2, 3)
    # Recompute DESED's pooling from the head's layers: softmax over classes, strong probabilities over time.
    feature_map = torch.randn(2, 4, 5, 2)
    out = head(feature_map)
    frames = feature_map.permute(0, 2, 1, 3).reshape(2, 5, 8)
    hidden, _ = head.gru(frames)
    strong = head.classifier(hidden).sigmoid()
    weights = torch.softmax(head.attention(hidden), dim=-1).clamp(1e-7, 1)
    torch.testing.assert_close(out["clip"].sigmoid(), (strong * weights).sum(1) / weights.sum(1), rtol=1e-5,
                               atol=1e-6)


def test_joint_model_trains_the_frame_entry_of_a_dict_output():
    model = build_model(DESED_CRNN, 128, {"event": 10})
    out = model(torch.randn(2, 64, 128))
    assert out["event"].shape == (2, 64, 10)


def test_attention_weights_sum_to_one_over_time():
    head = AttentionSceneHead({}, task="scene", n_classes=3, in_channels=4, in_features=2)
    frames = torch.randn(2, 7, 8)
    weights = torch.softmax(head.score(frames), dim=1)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 1))
    # Permuting frames permutes the weights: the pooled embedding, hence the logits, do not change.
    feature_map = torch.randn(2, 4, 7, 2)
    shuffled = feature_map[:, :, torch.randperm(7)]
    torch.testing.assert_close(head(feature_map), head(shuffled), rtol=1e-5, atol=1e-6)


# -- 003 Table 2, reconstructed (docs/complexity.md) ------------------------------------------------------------------

TABLE_2 = [  # recipe, parameters, MACs per second of audio (003 Table 2 / abstract)
    ("cpmobile_asc.yaml", 61_000, 29_000_000),
    ("cpmobile_rnn_sed.yaml", 966_000, 34_000_000),
    ("mt003_cnn_asc.yaml", 60_000, 29_000_000),
    ("mt003_crnn_sed.yaml", 628_000, 43_000_000),
    ("mt003_soft.yaml", 633_500, 43_200_000),
]


@pytest.mark.parametrize(("recipe", "params", "macs"), TABLE_2)
def test_table_2_reconstructions_within_1_percent_params_and_5_percent_macs(recipe, params, macs):
    report = profile_recipe(str(RECIPES / recipe), seconds=1.0)
    total = report["total"]
    assert abs(total["params"] - params) <= 0.01 * params
    for convention in ("macs_dcase_per_second", "macs_per_second"):
        assert abs(total[convention] - macs) <= 0.05 * macs, convention


def test_mt_model_is_the_cnn_and_crnn_sharing_one_encoder():
    reports = {r: profile_recipe(str(RECIPES / r), seconds=1.0)["components"]
               for r in ("mt003_cnn_asc.yaml", "mt003_crnn_sed.yaml", "mt003_soft.yaml")}
    rows = {r: {row["component"]: row["params"] for row in rows} for r, rows in reports.items()}
    mt = rows["mt003_soft.yaml"]
    assert mt["encoder"] == rows["mt003_cnn_asc.yaml"]["encoder"] == rows["mt003_crnn_sed.yaml"]["encoder"]
    assert mt["heads.scene"] == rows["mt003_cnn_asc.yaml"]["heads.scene"]
    assert mt["heads.event"] == rows["mt003_crnn_sed.yaml"]["heads.event"]
