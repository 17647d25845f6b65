"""Rewrites of a traced ONNX graph that make it smaller and faster: Fourier-kernel convolutions -> the STFT operator.

The exporter traces a feature extractor's STFT as a 1-D convolution with Fourier kernels (``torch.stft`` returns
complex tensors, which the TorchScript exporter cannot trace; nnAudio's STFT is such a convolution): ``n_fft``
multiply-adds per bin and frame, and the kernels (``2 x bins x n_fft`` floats) make the file many times the size of
the weights. ``fourier_convs_to_stft`` finds every ``Conv`` whose kernel ``[K, 1, N]`` is a windowed Fourier basis,
``w[n] cos(2 pi k n / N)`` or ``w[n] sin(2 pi k n / N)`` for ``k < K`` (found by its values, whatever made it), and
computes it with ONNX's ``STFT`` (opset 17: an FFT in onnxruntime), keeping only the window ``w`` (``N`` floats):

    conv(x, w cos)[b, k, t] =  Re STFT(x)[b, t, k]        conv(x, w sin)[b, k, t] = -Im STFT(x)[b, t, k]

(ONNX's STFT is ``sum_n x[n] w[n] e^{-2 pi i k n / N}``, as ``torch.stft``.) The two convolutions of one input share
one STFT node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Largest |kernel - windowed basis| (relative to the window's peak) for a kernel to count as a Fourier basis.
BASIS_TOLERANCE = 1e-5


def fourier_kind(kernel: np.ndarray) -> tuple[str, np.ndarray] | None:
    """``("cos" | "sin", window)`` when ``kernel [K, 1, N]`` is a windowed Fourier basis, else None."""
    if kernel.ndim != 3 or kernel.shape[1] != 1 or kernel.shape[0] < 2 or kernel.shape[0] > kernel.shape[2] // 2 + 1:
        return None
    bins, length = kernel.shape[0], kernel.shape[2]
    angles = 2 * np.pi * np.outer(np.arange(bins), np.arange(length)) / length
    rows = kernel[:, 0, :].astype(np.float64)
    if np.abs(rows[0]).max() == 0:  # row 0 of a sin basis is zero
        kind, basis = "sin", np.sin(angles)
        # Least squares per sample; at n = 0 and n = N/2 every sin is 0 and the window is not defined (0 here):
        # those samples add nothing to a sin transform, whatever the window holds there.
        window = (rows * basis).sum(0) / np.maximum((basis * basis).sum(0), 1e-12)
    else:
        kind, basis = "cos", np.cos(angles)
        window = rows[0]
    peak = np.abs(window).max()
    if peak == 0 or np.abs(rows - window * basis).max() > BASIS_TOLERANCE * peak:
        return None
    return kind, window.astype(np.float32)


def fourier_convs_to_stft(model: Any) -> int:
    """Replace the Fourier-kernel ``Conv`` nodes of ``model`` (an ``onnx.ModelProto``, opset >= 17) in place;
    returns how many were replaced. Unused kernels are dropped from the initializers."""
    from onnx import helper, numpy_helper

    graph = model.graph
    matches = _fourier_matches(graph, numpy_helper)
    stfts: dict[tuple[str, int, bytes], str] = {}
    nodes = []
    for i, node in enumerate(graph.node):
        if i not in matches:
            nodes.append(node)
            continue
        kind, window, stride, bins = matches[i]
        signal, out, scope = node.input[0], node.output[0], node.name or node.output[0]
        key = (signal, stride, window.tobytes())
        prefix = f"stft_{len(stfts)}"
        if key not in stfts:
            # [B, 1, L] -> [B, L, 1] -> STFT -> [B, frames, N // 2 + 1, 2]
            graph.initializer.extend([
                numpy_helper.from_array(window, f"{prefix}_window"),
                numpy_helper.from_array(np.array(stride, dtype=np.int64), f"{prefix}_step"),
                numpy_helper.from_array(np.array(len(window), dtype=np.int64), f"{prefix}_length"),
            ])
            nodes += [
                helper.make_node("Transpose", [signal], [f"{prefix}_signal"], f"{scope}/stft_signal", perm=[0, 2, 1]),
                helper.make_node("STFT", [f"{prefix}_signal", f"{prefix}_step", f"{prefix}_window",
                                          f"{prefix}_length"], [f"{prefix}_out"], f"{scope}/stft", onesided=1),
            ]
            stfts[key] = prefix
        prefix = stfts[key]
        part = f"{out}_{kind}"
        index = f"{part}_index"
        graph.initializer.append(numpy_helper.from_array(np.array(0 if kind == "cos" else 1, dtype=np.int64), index))
        nodes.append(helper.make_node("Gather", [f"{prefix}_out", index], [part], f"{scope}/part", axis=3))  # [B, frames, bins]
        if bins < len(window) // 2 + 1:
            graph.initializer.extend([numpy_helper.from_array(np.array([0], dtype=np.int64), f"{part}_start"),
                                      numpy_helper.from_array(np.array([bins], dtype=np.int64), f"{part}_end"),
                                      numpy_helper.from_array(np.array([2], dtype=np.int64), f"{part}_axis")])
            nodes.append(helper.make_node("Slice", [part, f"{part}_start", f"{part}_end", f"{part}_axis"],
                                          [f"{part}_cut"], f"{scope}/bins"))
            part = f"{part}_cut"
        if kind == "sin":
            nodes.append(helper.make_node("Neg", [part], [f"{part}_neg"], f"{scope}/neg"))
            part = f"{part}_neg"
        nodes.append(helper.make_node("Transpose", [part], [out], f"{scope}/time_major", perm=[0, 2, 1]))
    used = {name for node in nodes for name in node.input} | {output.name for output in graph.output}
    del graph.node[:]
    graph.node.extend(node for node in nodes if node.op_type != "Constant" or node.output[0] in used)
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return len(matches)


def _fourier_matches(graph: Any, numpy_helper: Any) -> dict[int, tuple[str, np.ndarray, int, int]]:
    """Node index -> ``(kind, window, stride, bins)`` of every Fourier-kernel convolution of ``graph``."""
    # Weights are initializers or, for buffers the exporter folded, Constant nodes.
    initializers = {init.name: init for init in graph.initializer}
    initializers.update({node.output[0]: attribute.t for node in graph.node if node.op_type == "Constant"
                         for attribute in node.attribute if attribute.name == "value"})
    matches = {i: m for i, node in enumerate(graph.node)
               if (m := _fourier_conv(node, initializers, numpy_helper)) is not None}
    # A sin kernel does not define the window at n = 0 and N/2: take the cos kernel's of the same input when there
    # is one (then both share one STFT node).
    cos_windows = {(graph.node[i].input[0], m[2]): m[1] for i, m in matches.items() if m[0] == "cos"}
    for i, (kind, window, stride, bins) in list(matches.items()):
        shared = cos_windows.get((graph.node[i].input[0], stride))
        if kind == "sin" and shared is not None and shared.shape == window.shape:
            matches[i] = (kind, shared, stride, bins)
    return matches


def _fourier_conv(node: Any, initializers: dict[str, Any], numpy_helper: Any) -> tuple[str, np.ndarray, int, int] | None:
    """``(kind, window, stride, bins)`` of a 1-D ``Conv`` without bias, padding or dilation whose kernel is a
    windowed Fourier basis."""
    if node.op_type != "Conv" or len(node.input) != 2 or node.input[1] not in initializers:
        return None
    attributes = {a.name: a for a in node.attribute}
    strides = list(attributes["strides"].ints) if "strides" in attributes else [1]
    if len(strides) != 1 or any(list(attributes[name].ints) != value for name, value in
                                (("pads", [0, 0]), ("dilations", [1])) if name in attributes):
        return None
    if "group" in attributes and attributes["group"].i != 1:
        return None
    kernel = numpy_helper.to_array(initializers[node.input[1]])
    found = fourier_kind(kernel)
    if found is None:
        return None
    return found[0], found[1], strides[0], kernel.shape[0]
