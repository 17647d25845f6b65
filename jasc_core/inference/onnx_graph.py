"""Rewrites of a traced ONNX graph that make it smaller and faster: Fourier-kernel convolutions -> an FFT.

Two rewrites, tried in this order:

- ``fourier_power_to_fft``: where the graph computes ``(conv_cos^2 + conv_sin^2) @ mel_basis`` (the log-mel front
  end's power spectrum and mel projection), the whole chain from the framed signal to the mel energies becomes the
  two-step matrix-product FFT of ``jasc_core.inference.onnx_fft``, checked on a random input against the chain it
  replaces (kept where they differ); fastest on onnxruntime's CPU provider (its STFT kernel is ~2x slower);
- ``fourier_convs_to_stft``: any Fourier-kernel convolution left (e.g. a front end with a magnitude, not a power,
  spectrum) becomes ONNX's ``STFT`` operator:

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

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.inference.onnx_fft import fft_factors, fft_mel_nodes, framing_pieces

if TYPE_CHECKING:  # onnx is an optional extra, imported where a graph is rewritten
    from onnx import GraphProto, ModelProto, NodeProto, TensorProto

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


def fourier_convs_to_stft(model: ModelProto) -> int:
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


def _fourier_matches(graph: GraphProto, numpy_helper: ModuleType) -> dict[int, tuple[str, np.ndarray, int, int]]:
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


def _fourier_conv(node: NodeProto, initializers: dict[str, TensorProto],
                  numpy_helper: ModuleType) -> tuple[str, np.ndarray, int, int] | None:
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


#: Operators the traced chain from the two Fourier convolutions to the power spectrum may hold (moves, squares, sums).
POWER_CHAIN_OPS = {"Gather", "Transpose", "Neg", "Unsqueeze", "Squeeze", "Concat", "Mul", "Add", "Slice", "Reshape",
                   "Identity", "Constant"}
#: Largest |rewritten - original| of the mel energies, relative to their peak, for the FFT rewrite to be kept.
FFT_REWRITE_TOLERANCE = 1e-5


def fourier_power_to_fft(model: ModelProto, seed: int = 0) -> int:
    """Replace each ``(cos conv^2 + sin conv^2) @ mel_basis`` chain of ``model`` by the two-step FFT
    (``onnx_fft.fft_mel_nodes``) in place; returns how many. The graph's input must have a static length (the
    framing is laid out for it); each replacement is checked on a random input, and dropped if it differs."""
    from onnx import numpy_helper

    graph = model.graph
    matches = _fourier_matches(graph, numpy_helper)
    pairs: dict[tuple[str, int], dict[str, int]] = {}
    for i, (kind, _, stride, _) in matches.items():
        pairs.setdefault((graph.node[i].input[0], stride), {})[kind] = i
    done = 0
    for (signal, stride), pair in pairs.items():
        factors = fft_factors(len(matches[pair["cos"]][1]))
        if set(pair) != {"cos", "sin"} or factors is None:
            continue
        if sum(len(runs) for runs in framing_pieces(*factors, stride)) > 4 * factors[0]:
            continue  # a hop much shorter than N2 would cut each frame into many slices: the STFT rewrite does it
        chain = _power_mel_chain(graph, [graph.node[pair[k]].output[0] for k in ("cos", "sin")])
        if chain is None:
            continue
        matmul, basis = chain
        window = matches[pair["cos"]][1]
        feeds = _random_feeds(model, seed)
        length, reference = _values(model, [signal, matmul.output[0]], feeds)
        frames = (length.shape[-1] - len(window)) // stride + 1
        nodes, inits = fft_mel_nodes(signal, length.shape[-1], frames, window, stride, basis, matmul.output[0],
                                     f"fft_{done}", matmul.name)
        candidate = model.__class__()
        candidate.CopyFrom(model)
        _splice(candidate.graph, matmul.output[0], nodes, inits)
        try:
            (rewritten,) = _values(candidate, [matmul.output[0]], feeds)
        except Exception:  # onnxruntime rejects the spliced graph (e.g. a frequency-major chain): keep the original
            continue
        if (rewritten.shape == reference.shape
                and np.abs(rewritten - reference).max() <= FFT_REWRITE_TOLERANCE * np.abs(reference).max()):
            model.CopyFrom(candidate)
            done += 1
    return done


def _power_mel_chain(graph: GraphProto, conv_outputs: list[str]) -> tuple[NodeProto, np.ndarray] | None:
    """The ``MatMul`` (and its constant 2-D basis) whose input is computed from both convolutions' outputs through
    ``POWER_CHAIN_OPS`` only (no root or power: a magnitude spectrum is left alone); None when there is none. That
    the chain computes ``re^2 + im^2`` is checked by value (``fourier_power_to_fft``)."""
    from onnx import numpy_helper

    producers = {out: node for node in graph.node for out in node.output}
    constants = {init.name: init for init in graph.initializer}
    constants.update({node.output[0]: a.t for node in graph.node if node.op_type == "Constant"
                      for a in node.attribute if a.name == "value"})
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in constants or node.input[0] not in producers:
            continue
        source = producers[node.input[0]]
        basis = numpy_helper.to_array(constants[node.input[1]])
        if (source.op_type in POWER_CHAIN_OPS and basis.ndim == 2
                and _reached(source, producers, constants) == set(conv_outputs)):
            return node, basis
    return None


def _reached(node: NodeProto, producers: dict[str, NodeProto], constants: dict[str, TensorProto]) -> set[str] | None:
    """The Fourier convolutions' outputs (tensors made by a ``Conv``) that ``node`` is computed from, walking back
    through ``POWER_CHAIN_OPS``; None when another operator is on the way."""
    reached, stack, seen = set(), [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for name in current.input:
            producer = producers.get(name)
            if producer is None or name in constants:
                continue
            if producer.op_type == "Conv":
                reached.add(name)
            elif producer.op_type in POWER_CHAIN_OPS:
                stack.append(producer)
            else:
                return None
    return reached


def _splice(graph: GraphProto, output: str, nodes: list[NodeProto], inits: list[TensorProto]) -> None:
    """Make ``nodes`` the producers of ``output`` in place of its old producer; drop what nothing uses any more."""
    kept = [node for node in graph.node if output not in node.output]
    graph.initializer.extend(inits)
    ordered = []
    for node in kept:  # the new nodes go where the old producer's inputs are all computed: before its first consumer
        if nodes and output in node.input:
            ordered += nodes
            nodes = []
        ordered.append(node)
    ordered += nodes
    needed = {o.name for o in graph.output}
    live = []
    for node in reversed(ordered):
        if any(name in needed for name in node.output):
            live.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(live))
    keep = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _random_feeds(model: ModelProto, seed: int) -> dict[str, np.ndarray]:
    """One random float input of batch 1 for each graph input (static dimensions other than the batch)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.input:
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = (0.1 * rng.standard_normal(dims)).astype(np.float32)
    return feeds


def _values(model: ModelProto, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The values of the tensors ``names`` of ``model`` on ``feeds`` (onnxruntime, CPU)."""
    import onnxruntime
    from onnx import helper

    probe = model.__class__()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(names, feeds)
