"""The integer reference of a graph model: every layer on NHWC int8 tensors, in the model's layer order.

The arithmetic of each op is quant/conv_reference.py's (and reference.dense/lut for the dense and table
layers); this module only routes tensors by name. Flat tensors are the NHWC tensor's bytes in order.
"""

from __future__ import annotations

import numpy as np

from qmcu.quant import conv_reference as ops
from qmcu.quant.graph_checks import tensor_shapes
from qmcu.quant.intmodel import Add, Conv, Dense, IntModel, Lut, Pool
from qmcu.quant.reference import dense, lut


def forward_all(model: IntModel, inputs: np.ndarray) -> list[np.ndarray]:
    """Every layer's int8 output, each flattened to [N, size], for int8 inputs [N, input_size] (NHWC order)."""
    shapes = tensor_shapes(model)
    n = len(inputs)
    tensors: dict[str, np.ndarray] = {"input": np.asarray(inputs, np.int64).reshape(n, *shapes["input"])}
    outs = []
    for lay in model.layers:
        assert lay.inputs
        x = tensors[lay.inputs[0]]
        if isinstance(lay, Conv):
            common = {"input_zero_point": lay.input_zero_point, "stride": tuple(lay.stride),
                      "padding": tuple(lay.padding), "multipliers": lay.multipliers, "shifts": lay.shifts,
                      "output_zero_point": lay.output_zero_point, "qmin": lay.act_min, "qmax": lay.act_max}
            kh, kw = lay.kernel
            if lay.depth_multiplier:
                w = np.asarray(lay.weights, np.int64).reshape(kh, kw, lay.out_shape[2])
                y = ops.depthwise_conv2d(x, w, np.asarray(lay.bias, np.int64), depth_multiplier=lay.depth_multiplier,
                                         **common)
            else:
                w = np.asarray(lay.weights, np.int64).reshape(lay.out_shape[2], kh, kw, lay.in_shape[2])
                y = ops.conv2d(x, w, np.asarray(lay.bias, np.int64), **common)
        elif isinstance(lay, Pool):
            if lay.kind == "max":
                y = ops.max_pool2d(x, kernel=tuple(lay.kernel), stride=tuple(lay.stride), padding=tuple(lay.padding))
            else:
                y = ops.avg_pool2d(x, kernel=tuple(lay.kernel), stride=tuple(lay.stride))
        elif isinstance(lay, Add):
            # A flat tensor and a 1x1xF one hold the same bytes: the add reads both in that order.
            y = ops.add(x, tensors[lay.inputs[1]].reshape(x.shape), add_params_of(lay), lay.act_min, lay.act_max)
        elif isinstance(lay, Dense):
            y = dense(x.reshape(n, -1), lay)
        else:
            assert isinstance(lay, Lut)
            y = lut(x, lay)
        tensors[lay.name] = y
        outs.append(y.reshape(n, -1))
    return outs


def add_params_of(lay: Add) -> ops.AddParams:
    """The add's integer parameters as conv_reference.add takes them."""
    return ops.AddParams(left_shift=lay.left_shift, input1_offset=-lay.input_zero_points[0],
                         input2_offset=-lay.input_zero_points[1], input1_multiplier=lay.input_multipliers[0],
                         input1_shift=lay.input_shifts[0], input2_multiplier=lay.input_multipliers[1],
                         input2_shift=lay.input_shifts[1], output_multiplier=lay.output_multiplier,
                         output_shift=lay.output_shift, output_offset=lay.output_zero_point)
