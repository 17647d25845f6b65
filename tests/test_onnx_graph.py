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


@given(n1=st.sampled_from([4, 6, 8, 16]), n2=st.sampled_from([4, 5, 8, 32]), seed=st.integers(0, 99))
@settings(max_examples=12, deadline=None)
def test_the_two_step_fft_plan_gives_every_rfft_bin_once(n1, n2, seed):
    from jasc_core.inference.onnx_fft import fft_plan

    n, frames = n1 * n2, 3
    x = np.random.default_rng(seed).standard_normal((frames, n))
    plan = fft_plan(n1, n2)
    columns = x.reshape(frames, n1, n2).transpose(1, 0, 2).reshape(n1, -1)  # [N1, T N2]
    step1_re, step1_im = plan.step1()
    y_re, y_im = ((m @ columns).reshape(plan.batches, frames, n2) for m in (step1_re, step1_im))
    step2_re, step2_im = plan.step2()
    z = y_re @ step2_re + y_im @ step2_im  # [H, T, 2S]
    got = np.zeros((frames, n // 2 + 1), dtype=complex)
    for b, j in zip(*np.nonzero(plan.slot_bins >= 0), strict=True):
        got[:, plan.slot_bins[b, j]] = z[b, :, j] + 1j * z[b, :, plan.slots + j]
    assert sorted(plan.slot_bins[plan.slot_bins >= 0].tolist()) == list(range(n // 2 + 1))
    np.testing.assert_allclose(got, np.fft.rfft(x, axis=1), atol=1e-9 * n)


def power_mel_graph(n_fft: int, win: int, hop: int, length: int, mels: int, magnitude: bool = False) -> object:
    """The traced log-mel chain: Fourier convolutions, power (or magnitude) spectrum [B, T, bins], mel MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    cos, sin = kernels(n_fft, win)
    basis = np.abs(np.random.default_rng(0).standard_normal((n_fft // 2 + 1, mels))).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "wc"], ["re"], "/features/Conv", strides=[hop]),
             helper.make_node("Conv", ["x", "ws"], ["im"], "/features/Conv_1", strides=[hop]),
             helper.make_node("Mul", ["re", "re"], ["re2"], "/features/Mul"),
             helper.make_node("Mul", ["im", "im"], ["im2"], "/features/Mul_1"),
             helper.make_node("Add", ["re2", "im2"], ["power"], "/features/Add"),
             helper.make_node("Transpose", ["power"], ["spectrum"], "/features/Transpose", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["spectrum", "mel"], ["y"], "/features/MatMul")]
    if magnitude:
        nodes.insert(5, helper.make_node("Sqrt", ["power"], ["power_sqrt"], "/features/Sqrt"))
        nodes[6].input[0] = "power_sqrt"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 1, length])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(cos, "wc"), numpy_helper.from_array(sin, "ws"),
                               numpy_helper.from_array(basis, "mel")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@given(log_fft=st.integers(5, 9), win_share=st.floats(0.5, 1.0), hop=st.integers(8, 300), extra=st.integers(0, 50))
@settings(max_examples=6, deadline=None)
def test_the_power_and_mel_chain_becomes_a_matrix_product_fft_with_the_same_numbers(log_fft, win_share, hop, extra):
    from jasc_core.inference.onnx_graph import fourier_power_to_fft

    n_fft = 2 ** log_fft
    length = 5 * hop + n_fft + extra
    model = power_mel_graph(n_fft, max(2, int(n_fft * win_share)), hop, length, mels=6)
    x = np.random.default_rng(hop).standard_normal((3, 1, length)).astype(np.float32)
    (before,) = run(model, x)
    assert fourier_power_to_fft(model) == 1
    ops = [node.op_type for node in model.graph.node]
    assert "Conv" not in ops and "STFT" not in ops and "MatMul" in ops
    assert max(np.prod(init.dims) for init in model.graph.initializer) <= (n_fft // 2 + 2) * 6  # the mel basis
    (after,) = run(model, x)  # batch 3, while the rewrite was checked on batch 1
    assert after.shape == before.shape
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5 * np.abs(before).max())


def test_a_hop_much_shorter_than_the_fft_columns_is_left_to_the_stft_rewrite():
    from jasc_core.inference.onnx_graph import fourier_power_to_fft

    model = power_mel_graph(512, 512, 2, 700, mels=4)  # N2 = 16 samples per piece would need 8 slices each
    x = np.random.default_rng(0).standard_normal((1, 1, 700)).astype(np.float32)
    (before,) = run(model, x)
    assert fourier_power_to_fft(model) == 0 and fourier_convs_to_stft(model) == 2
    np.testing.assert_allclose(run(model, x)[0], before, rtol=1e-4, atol=1e-5 * np.abs(before).max())


def test_a_magnitude_spectrum_is_left_to_the_stft_rewrite():
    from jasc_core.inference.onnx_graph import fourier_power_to_fft

    model = power_mel_graph(64, 64, 16, 400, mels=4, magnitude=True)
    x = np.random.default_rng(0).standard_normal((2, 1, 400)).astype(np.float32)
    (before,) = run(model, x)
    assert fourier_power_to_fft(model) == 0
    assert fourier_convs_to_stft(model) == 2
    np.testing.assert_allclose(run(model, x)[0], before, rtol=1e-4, atol=1e-5 * np.abs(before).max())

