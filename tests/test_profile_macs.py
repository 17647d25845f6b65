"""The complexity profiler: the MAC counter checked against hand counts, and the Tonami network's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from jasc_core.model.complexity import count_macs, profile_model, render_profile, rnn_macs
from jasc_core.model.pipeline import build_model

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
OFFICIAL_CODE = {
    "encoder": {"name": "tonami_cnn", "activation": "relu"},
    "heads": {
        "scene": {"name": "tonami_scene", "activation": "relu", "global_pool": "time"},
        "event": {"name": "bigru", "activation": "relu", "hidden_size": 64},
    },
}
TABLE_II = {"encoder": {"name": "tonami_cnn"}, "heads": {"scene": {"name": "tonami_scene"}, "event": {"name": "bigru"}}}
TUT = {"scene": 4, "event": 25}


# -- the counter against hand counts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("stride", "padding", "bias"), [(1, 1, True), (2, 0, False)])
def test_conv2d_macs_are_outputs_times_kernel_volume(stride, padding, bias):
    conv = nn.Conv2d(3, 5, (3, 2), stride=stride, padding=padding, bias=bias)
    macs, out = count_macs(conv, torch.randn(2, 3, 11, 8))
    batch, c_out, h, w = out.shape
    assert macs == batch * c_out * h * w * (3 * 3 * 2)  # each output: C_in x kH x kW multiply-adds; bias not counted


def test_linear_macs_over_frames():
    linear = nn.Linear(7, 4)
    macs, _ = count_macs(linear, torch.randn(2, 9, 7))
    assert macs == 2 * 9 * 7 * 4


@pytest.mark.parametrize(("bidirectional", "layers", "batch_first"), [(True, 1, True), (False, 2, False), (True, 2, True)])
def test_gru_macs_match_the_gate_formula(bidirectional, layers, batch_first):
    gru = nn.GRU(6, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    batch, steps = 3, 7
    x = torch.randn(batch, steps, 6) if batch_first else torch.randn(steps, batch, 6)
    macs, _ = count_macs(gru, x)
    directions = 2 if bidirectional else 1
    by_hand = 0
    for layer in range(layers):
        inputs = 6 if layer == 0 else 5 * directions
        by_hand += directions * batch * steps * 3 * (5 * inputs + 5 * 5)  # 3 gates: W_i* x and W_h* h per step
    assert macs == rnn_macs(gru, batch, steps) == by_hand


def test_lstm_formula_has_four_gates():
    assert rnn_macs(nn.LSTM(6, 5), batch=1, steps=1) == 4 * 5 * (6 + 5)


class HiddenGRU(nn.GRU):
    """A GRU whose products the counter cannot see (as with a fused cuDNN kernel)."""

    def forward(self, x, hx=None):
        batch, steps = x.shape[:2]
        return x.new_zeros(batch, steps, self.hidden_size * 2), None


class WithHiddenGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = HiddenGRU(4, 3, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


def test_rnn_products_the_counter_misses_are_added_by_formula():
    macs, _ = count_macs(WithHiddenGRU(), torch.randn(1, 10, 4))
    assert macs == 2 * 10 * 3 * 3 * (4 + 3) + 10 * 6 * 2


def test_rnn_products_the_counter_sees_are_not_counted_twice():
    model = WithHiddenGRU()
    model.rnn = nn.GRU(4, 3, batch_first=True, bidirectional=True)
    macs, _ = count_macs(model, torch.randn(1, 10, 4))
    assert macs == 2 * 10 * 3 * 3 * (4 + 3) + 10 * 6 * 2


# -- the Tonami network ------------------------------------------------------------------------------------------


def tonami_macs(frames: int, gru_units: int, scene_fc_inputs: int) -> dict[str, int]:
    """Hand count of the Tonami network on [1, frames, 64] (conv: outputs x 9 x C_in)."""
    encoder = frames * 9 * (64 * 128 * 1 + 8 * 128 * 128 + 4 * 128 * 128)  # freq 64, 8, 4 at the three convs
    pooled = frames // 25
    scene = 9 * (frames * 2 * 256 * 128 + pooled * 2 * 256 * 256) + scene_fc_inputs * 32 + 32 * 4
    event = frames * (2 * 3 * gru_units * (256 + gru_units) + 2 * gru_units * 32 + 32 * 25)
    return {"encoder": encoder, "heads.scene": scene, "heads.event": event}


@pytest.mark.parametrize(("block", "params", "gru_units", "fc_inputs"),
                         [(OFFICIAL_CODE, 1_328_637, 64, 512), (TABLE_II, 1_250_429, 32, 256)])
def test_tonami_profile_per_component(block, params, gru_units, fc_inputs):
    model = build_model(block, 64, TUT)
    report = profile_model(model, n_frames=500, n_features=64, seconds=10.0)
    expected = tonami_macs(500, gru_units, fc_inputs)
    rows = {row["component"]: row for row in report["components"]}
    assert {name: row["macs"] for name, row in rows.items()} == expected
    assert report["total"]["params"] == params == sum(row["params"] for row in rows.values())
    assert report["total"]["macs"] == sum(expected.values())
    assert report["total"]["macs_per_second"] == pytest.approx(report["total"]["macs"] / 10.0)
    assert rows["encoder"]["name"] == "tonami_cnn"
    assert report["feature_map"] == [1, 128, 500, 2]


def test_profile_leaves_the_model_as_it_was():
    model = build_model(TABLE_II, 64, TUT).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile_model(model, n_frames=50, n_features=64, seconds=1.0)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN running stats untouched


def test_render_profile_prints_the_table():
    report = profile_model(build_model(OFFICIAL_CODE, 64, TUT), n_frames=500, n_features=64, seconds=10.0)
    console = Console(record=True, width=140)
    render_profile(report, console)
    text = console.export_text()
    assert "1,328,637" in text
    assert f"{report['total']['macs']:,}" in text
    assert "1 MAC = 1 multiply-add" in text
    json.dumps(report)  # the --json output is plain data


def test_profile_command_on_the_official_recipe(capsys):
    from jasc_core.contract.registry import get_registry
    from jasc_core.model.complexity import profile_command

    registry = get_registry()
    needed = [("dataset", "joint"), ("features", "logmel"), ("weighting", "constant"), ("schedule", "soft")]
    missing = [f"{kind} {n}" for kind, n in needed if n not in registry.names(kind)]
    if missing:
        pytest.skip(f"not installed yet: {', '.join(missing)}")
    profile_command(str(RECIPES / "tonami_official_code.yaml"), [], as_json=True)
    report = json.loads(capsys.readouterr().out)
    assert report["total"]["params"] == 1_328_637
    assert report["input"]["shape"] == [1, 500, 64]
    assert report["n_classes"] == TUT
