"""Fourier-kernel convolutions become ONNX's STFT: same numbers, smaller graph; other convolutions stay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core.inference.onnx_graph import fourier_convs_to_stft, fourier_kind

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def kernels(n_fft: int, win: int) -> tuple[np.ndarray, np.ndarray]:
    """nnAudio's kernels: a periodic Hann window of ``win`` samples centred in ``n_fft``, times cos and sin."""
    window = np.zeros(n_fft)
    start = (n_fft - win) // 2
    window[start: start + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    angles = 2 * np.pi * np.outer(np.arange(n_fft // 2 + 1), np.arange(n_fft)) / n_fft
    return ((window * np.cos(angles))[:, None].astype(np.float32), (window * np.sin(angles))[:, None].astype(np.float32))


def conv_graph(weights: list[np.ndarray], hop: int) -> object:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Conv", ["x", f"w{i}"], [f"y{i}"], f"/features/Conv_{i}", strides=[hop])
             for i in range(len(weights))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 1, "n"])],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None)
                               for i in range(len(weights))],
                              [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: object, x: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})


@given(log_fft=st.integers(4, 9), win_share=st.floats(0.5, 1.0), hop=st.integers(1, 40), seed=st.integers(0, 99))
@settings(max_examples=8, deadline=None)
def test_stft_rewrite_gives_the_convolutions_numbers(log_fft, win_share, hop, seed):
    n_fft = 2 ** log_fft
    cos, sin = kernels(n_fft, max(2, int(n_fft * win_share)))
    other = np.random.default_rng(seed).standard_normal((3, 1, 5)).astype(np.float32)
    model = conv_graph([cos, sin, other], hop)
    x = np.random.default_rng(seed).standard_normal((2, 1, 4 * n_fft + 7)).astype(np.float32)
    before = run(model, x)
    assert fourier_convs_to_stft(model) == 2
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("STFT") == 1 and ops.count("Conv") == 1  # cos and sin share one STFT; the other conv stays
    assert {init.name for init in model.graph.initializer} >= {"w2"} and "w0" not in {
        init.name for init in model.graph.initializer}
    for got, want in zip(run(model, x), before, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-4 * np.abs(want).max() + 1e-5)


def test_a_kernel_that_is_not_a_fourier_basis_is_left_alone():
    cos, _ = kernels(64, 64)
    assert fourier_kind(cos) is not None
    bent = cos.copy()
    bent[3, 0, 10] += 0.01
    assert fourier_kind(bent) is None
    assert fourier_kind(np.ones((4, 2, 8), dtype=np.float32)) is None
