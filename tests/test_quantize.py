"""What the int8 copy keeps float: convolutions over too few input values (their int8 product is slower)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")


def test_a_convolution_over_few_input_values_stays_float_and_deeper_ones_are_quantised():
    from onnx import TensorProto, helper, numpy_helper

    from jasc_core.inference.quantize import narrow_convolutions

    weights = {"narrow": np.zeros((8, 1, 3, 3), np.float32), "deep": np.zeros((8, 8, 3, 3), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "narrow"], ["y"], "narrow_conv"),
             helper.make_node("Conv", ["y", "deep"], ["z"], "deep_conv")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, name) for name, w in weights.items()])
    assert narrow_convolutions(helper.make_model(graph)) == ["narrow_conv"]  # 9 values per output; 72 are enough
