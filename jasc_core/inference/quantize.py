"""Smaller copies of an exported model: static int8 (QDQ, calibrated on clips of the run) and fp16.

**int8** (``quantize_int8``): onnxruntime's static quantisation in the QDQ format. The graph is first prepared by
onnxruntime's pre-processing (shape inference; no graph optimisation, which would fold the front end's generated
matrices into the file; batch norm is already folded into the convolutions by the exporter in eval mode, which
``batch_norm_nodes`` checks), then calibrated on waveforms of the run's clips (MinMax ranges of every activation),
and the convolutions, matmuls and linear layers get int8 weights per output channel and uint8 activations, with
Relu folded into the output range before it and average pooling in integers; onnxruntime runs them as
QLinearConv / QLinearAveragePool / integer matmuls. Weights use 7 of the 8 bits (``reduce_range``): on x86 CPUs
without VNNI (AVX2, as the development machine), onnxruntime multiplies uint8 by int8 with ``vpmaddubsw``, whose
16-bit sums of two products saturate for full-range weights (255 x 127 x 2 > 32767); on 003's model the full range
gave 10x the difference to fp32 of the reduced one. Left in float:

- convolutions with fewer than ``MIN_INT8_CONV_DEPTH`` weights per output value (a 3 x 3 kernel on the one mel
  channel): their int8 product ran 3-4x slower than the float kernel;
- the front end (every node in the feature extractor's module scope: the FFT, power, the mel matmul, log and
  normalisation): a power spectrum spans ~10 orders of magnitude, which 8 bits cannot hold before the log;
- the arithmetic of recurrent layers (ONNX ``GRU``/``LSTM``/``RNN``): onnxruntime has no integer GRU kernel at all,
  and its only integer LSTM (``DynamicQuantizeLSTM``) quantises activations at run time step by step. Their weights
  (most of the parameters of 003's BiGRU head) are *stored* in int8, per output row, and dequantised once per run
  in front of the float kernel (``recurrent_weights_int8``): the file shrinks ~4x there, the speed stays the float
  kernel's;
- a large front-end matrix (a dense mel basis, as an ``STFT``-rewritten graph holds) is stored in fp16 and cast to
  float32 in the graph (``front_end_matrices_fp16``); the FFT rewrite's mel basis is stored sparse, small already.

**fp16** (``convert_fp16``): every float weight and activation in half precision except the front end (as above),
recurrent layers and the graph's inputs and outputs (float32), for GPUs (onnxruntime's CUDA provider); CPUs run
fp16 no faster, and onnxruntime 1.32's CPU provider crashes (a segfault) on the fp16 graph of 003's model, so the
export checks the fp16 copy only where CUDA is available.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.contract.json_types import JSONObject

if TYPE_CHECKING:  # onnx is an optional extra, imported where a model is quantised
    from onnx import ModelProto

#: The module scope of the feature extractor in a traced ``ProbabilityGraph`` (``jasc_core.inference.export``).
FRONT_END_SCOPE = "/pipeline/features/"
#: Operators given int8 weights and uint8 activations (Relu and AveragePool so that a conv -> relu -> pool -> conv
#: chain stays in integers: the Relu folds into the convolution's output range, the pool runs as QLinearAveragePool).
INT8_OPERATORS = ["Conv", "MatMul", "Gemm", "Relu", "AveragePool"]
#: A convolution with fewer weights per output value than this (input channels x kernel size; 9 for a 3 x 3 kernel on
#: one mel channel) stays float: its int8 im2col product ran 3-4x slower than the float kernel on an AVX2 CPU.
MIN_INT8_CONV_DEPTH = 32
RECURRENT_OPERATORS = ("GRU", "LSTM", "RNN")


def front_end_nodes(model: ModelProto) -> list[str]:
    """Names of the nodes of the feature extractor (kept in float)."""
    return [node.name for node in model.graph.node if node.name.startswith(FRONT_END_SCOPE)]


def narrow_convolutions(model: ModelProto) -> list[str]:
    """Names of the ``Conv`` nodes with fewer than ``MIN_INT8_CONV_DEPTH`` weights per output value (kept float)."""
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    return [node.name for node in model.graph.node if node.op_type == "Conv" and node.input[1] in shapes
            and int(np.prod(shapes[node.input[1]][1:])) < MIN_INT8_CONV_DEPTH]


def batch_norm_nodes(model: ModelProto) -> int:
    """BatchNormalization nodes left in the graph (0: all folded into the convolutions before them)."""
    return sum(node.op_type == "BatchNormalization" for node in model.graph.node)


class WaveformReader:
    """onnxruntime's calibration data reader over waveforms ``[N, samples]``, a few at a time."""

    def __init__(self, waveforms: np.ndarray, batch_size: int = 8) -> None:
        self.batches: Iterator[np.ndarray] = iter(
            [waveforms[i: i + batch_size].astype(np.float32) for i in range(0, len(waveforms), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {"waveform": batch}

    def rewind(self) -> None:  # called by some onnxruntime versions; one pass is all calibration needs
        pass


def quantize_int8(path: Path, int8_path: Path, calibration: np.ndarray, operators: list[str] | None = None,
                  exclude: Callable[[ModelProto], list[str]] | None = narrow_convolutions,
                  reduce_range: bool = True) -> JSONObject:
    """Static QDQ int8 copy of ``path`` calibrated on waveforms ``calibration [N, samples]``; returns what was
    quantised (see the module docstring). ``operators`` (default ``INT8_OPERATORS``), ``exclude`` (model -> node
    names kept float besides the front end) and ``reduce_range`` (7-bit weights) are there for experiments."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # The quantiser logs about every tensor whose type it cannot infer (pages of protobuf text): silenced.
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(path), str(prepared), skip_optimization=True, skip_symbolic_shape=True)
            model = onnx.load(str(prepared))
            front_end, kept_float = front_end_nodes(model), exclude(model) if exclude else []
            quantize_static(
                str(prepared), str(int8_path), WaveformReader(calibration), quant_format=QuantFormat.QDQ,
                per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                op_types_to_quantize=operators or INT8_OPERATORS, nodes_to_exclude=front_end + kept_float,
                reduce_range=reduce_range,
                calibrate_method=CalibrationMethod.MinMax,
            )
    finally:
        logging.disable(logging.NOTSET)
    model = onnx.load(str(int8_path))
    recurrent_weights_int8(model)
    front_end_matrices_fp16(model)
    onnx.save(model, str(int8_path))
    report = int8_report(model, len(calibration), len(front_end))
    report.update(reduce_range=reduce_range, float_convolutions=len(kept_float))
    return report


def recurrent_weights_int8(model: ModelProto) -> int:
    """Store the input and recurrent weights (``W``, ``R``: ``[directions, gates x hidden, inputs]``) of every
    recurrent node as int8 with one scale per gate row (symmetric), dequantised in the graph; returns how many."""
    from onnx import helper, numpy_helper

    weights = {init.name: init for init in model.graph.initializer}
    nodes, replaced = [], 0
    for node in model.graph.node:
        if node.op_type in RECURRENT_OPERATORS:
            for slot in (1, 2):
                name = node.input[slot] if len(node.input) > slot else ""
                if name not in weights:
                    continue
                values = numpy_helper.to_array(weights[name]).astype(np.float32)
                scale = np.maximum(np.abs(values).max(axis=(0, 2)), 1e-12).astype(np.float32) / 127.0
                quantised = np.clip(np.round(values / scale[None, :, None]), -127, 127).astype(np.int8)
                model.graph.initializer.remove(weights.pop(name))
                model.graph.initializer.extend([numpy_helper.from_array(quantised, f"{name}_int8"),
                                                numpy_helper.from_array(scale, f"{name}_scale")])
                nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale"], [name],
                                              f"{node.name}/{slot}_dequantize", axis=1))
                replaced += 1
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return replaced


def front_end_matrices_fp16(model: ModelProto, min_size: int = 16384) -> int:
    """Store the front end's large matrices (the mel basis: at least ``min_size`` values) in fp16, cast back to
    float32 in the graph (onnxruntime folds the cast once, when the session loads): the arithmetic stays float32,
    the basis loses ~5e-4 of relative precision (1e-3 at most, far below int8's) and takes half the bytes. The FFT's
    own small matrices stay float32. Returns how many were stored so."""
    from onnx import TensorProto, helper, numpy_helper

    weights = {init.name: init for init in model.graph.initializer}
    nodes, stored = [], 0
    for node in model.graph.node:
        if node.name.startswith(FRONT_END_SCOPE):
            for slot, name in enumerate(node.input):
                init = weights.get(name)
                if init is None or init.data_type != TensorProto.FLOAT or np.prod(init.dims) < min_size:
                    continue
                values = numpy_helper.to_array(init)
                model.graph.initializer.remove(weights.pop(name))
                model.graph.initializer.append(numpy_helper.from_array(values.astype(np.float16), f"{name}_fp16"))
                nodes.append(helper.make_node("Cast", [f"{name}_fp16"], [f"{name}_fp32"], f"{node.name}/{slot}_cast",
                                              to=TensorProto.FLOAT))
                node.input[slot] = f"{name}_fp32"
                stored += 1
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return stored


def int8_report(model: ModelProto, clips: int, front_end: int) -> JSONObject:
    """What the int8 model holds: the quantised operators, the recurrent layers (float arithmetic, int8 weights)."""
    from onnx import numpy_helper

    weights = {init.name: init for init in model.graph.initializer}
    recurrent = [node for node in model.graph.node if node.op_type in RECURRENT_OPERATORS]
    int8_bytes = sum(numpy_helper.to_array(weights[f"{name}_int8"]).nbytes for node in recurrent
                     for name in node.input[1:3] if f"{name}_int8" in weights)
    dequantised = {node.output[0] for node in model.graph.node if node.op_type == "DequantizeLinear"}
    quantised: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in INT8_OPERATORS and any(name in dequantised for name in node.input):
            quantised[node.op_type] = quantised.get(node.op_type, 0) + 1
    return {"format": "QDQ static", "calibration_clips": clips, "per_channel": True, "int8_operators": quantised,
            "float_front_end_nodes": front_end, "float_recurrent": sorted({n.op_type for n in recurrent}),
            "recurrent_weights_int8_bytes": int(int8_bytes)}


def convert_fp16(path: Path, fp16_path: Path) -> None:
    """A float16 copy of ``path`` with float32 inputs and outputs and a float32 front end (module docstring)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(path))
    logging.disable(logging.WARNING)
    try:
        half = convert_float_to_float16(model, keep_io_types=True, node_block_list=front_end_nodes(model),
                                        op_block_list=["STFT", *RECURRENT_OPERATORS])
    finally:
        logging.disable(logging.NOTSET)
    onnx.save(half, str(fp16_path))
