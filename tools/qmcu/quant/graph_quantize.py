"""Quantize a captured graph (model/graph_capture.py) into a graph integer model.

TFLite's int8 scheme throughout: every tensor asymmetric int8 over its calibration range (widened to
hold 0); conv weights symmetric per output channel (qmax 127), biases int32 at input_scale *
weight_scale[c], a requantizer per channel; pools keep their input's scale and zero point; an add
requantizes both inputs to a common scale (TFLite's ADD); ReLU/ReLU6/Hardtanh fused into clamps;
elementwise activations become 256-entry tables; flatten is free (tensors are channels last already).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from qmcu.errors import QmcuError
from qmcu.model.capture import Elementwise
from qmcu.model.graph_capture import CapturedGraph, GraphNode, run_graph
from qmcu.quant.intmodel import Add, Conv, IntModel, Layer, Lut, Pool, validate
from qmcu.quant.qmath import (
    INT8_MAX,
    INT8_MIN,
    affine_asymmetric,
    clamp,
    f32,
    quantize_bias,
    quantize_weights,
    requant_multiplier,
    symmetric_row_scales,
)
from qmcu.quant.quantize import LUT_OUTPUT, _clamp_bounds, _dense, function_table, lut_table

logger = logging.getLogger(__name__)

Params = tuple[float, int]


def _hwc(shape: tuple[int, ...]) -> list[int]:
    if len(shape) == 1:  # a flat tensor (features): one pixel of that many channels
        return [1, 1, shape[0]]
    c, h, w = shape
    return [h, w, c]


def _observe(values: torch.Tensor) -> Params:
    v = values.detach().double()
    scale, zp = affine_asymmetric(float(v.min()), float(v.max()))
    return f32(scale), zp


def _bounds(node: GraphNode, out: Params) -> tuple[int, int, str]:
    if node.act is None:
        return INT8_MIN, INT8_MAX, "none"
    lo, hi = _clamp_bounds(node.act, out[0], out[1])
    return lo, hi, node.act.kind


def _conv(node: GraphNode, inp: Params, out: Params, in_shape: tuple[int, ...]) -> Conv:
    conv = node.module
    assert isinstance(conv, nn.Conv2d)
    w = conv.weight.detach().double().numpy()            # (Cout, Cin/groups, KH, KW)
    cout = w.shape[0]
    b = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(cout)
    scales = [f32(s) for s in symmetric_row_scales(w.reshape(cout, -1))]
    depthwise = node.attrs["groups"] > 1
    rows = [quantize_weights(w[o], scales[o]) for o in range(cout)]  # each in (Cin/g, KH, KW) order
    q = np.array(rows, dtype=np.int64).reshape(w.shape)
    if depthwise:
        weights = q[:, 0, :, :].transpose(1, 2, 0).reshape(-1).tolist()   # (KH, KW, Cout)
        multiplier = cout // in_shape[0]
    else:
        weights = q.transpose(0, 2, 3, 1).reshape(-1).tolist()            # (Cout, KH, KW, Cin)
        multiplier = 0
    in_scale, out_scale = f32(inp[0]), f32(out[0])
    bias = [quantize_bias(b[o:o + 1], in_scale, s)[0] for o, s in enumerate(scales)]
    pairs = [requant_multiplier(in_scale, s, out_scale) for s in scales]
    lo, hi, act = _bounds(node, out)
    t, bt, left, r = node.attrs["padding"]
    out_shape = _hwc(node.shape)
    return Conv(name=node.name, inputs=list(node.inputs), in_shape=_hwc(in_shape), out_shape=out_shape,
                kernel=list(node.attrs["kernel"]), stride=list(node.attrs["stride"]), padding=[t, bt, left, r],
                depth_multiplier=multiplier, weights=[int(v) for v in weights], bias=bias, weight_scales=scales,
                multipliers=[m for m, _ in pairs], shifts=[s for _, s in pairs], input_scale=in_scale,
                input_zero_point=inp[1], output_scale=out_scale, output_zero_point=out[1], act_min=lo, act_max=hi,
                activation=act)


def _add(node: GraphNode, a: Params, b: Params, out: Params, shape: tuple[int, ...]) -> Add:
    from qmcu.quant.conv_reference import add_params

    p = add_params(a[0], a[1], b[0], b[1], out[0], out[1])
    lo, hi, act = _bounds(node, out)
    return Add(name=node.name, inputs=list(node.inputs), shape=_hwc(shape), input_scales=[f32(a[0]), f32(b[0])],
               input_zero_points=[a[1], b[1]], output_scale=f32(out[0]), output_zero_point=out[1],
               left_shift=p.left_shift, input_multipliers=[p.input1_multiplier, p.input2_multiplier],
               input_shifts=[p.input1_shift, p.input2_shift], output_multiplier=p.output_multiplier,
               output_shift=p.output_shift, act_min=lo, act_max=hi, activation=act)


def quantize_graph(g: CapturedGraph, calibration: np.ndarray, name: str, provenance: dict[str, object],
                   weights: str = "per_tensor") -> IntModel:
    """The graph integer model of g; calibration: N x features rows of the model's own input layout."""
    x = torch.from_numpy(np.asarray(calibration, np.float32).reshape(len(calibration), *g.input_shape))
    with torch.no_grad():
        values = run_graph(g, x, every=True)
    assert isinstance(values, dict)
    for node in g.nodes:
        if not bool(torch.isfinite(values[node.name]).all()):
            raise QmcuError(f"the calibration set drives the output of {node.name} to NaN or Inf",
                            "calibrate with samples from the range the model will see")
    params: dict[str, Params] = {"input": _observe(values["input"])}
    shapes: dict[str, tuple[int, ...]] = {"input": tuple(values["input"].shape[1:])}
    alias: dict[str, str] = {}  # a flatten's name -> the tensor it reinterprets
    layers: list[Layer] = []

    def real(n: str) -> str:
        return alias.get(n, n)

    for node in g.nodes:
        ins = [real(i) for i in node.inputs]
        shape = tuple(values[node.name].shape[1:])
        inp = params[ins[0]]
        if node.kind == "flatten":
            alias[node.name] = ins[0]
            continue
        if node.kind in ("maxpool", "avgpool"):
            out = inp  # TFLite: pooling keeps the input's quantization
            t, b, left, r = node.attrs["padding"]
            layers.append(Pool(name=node.name, inputs=ins, in_shape=_hwc(shapes[ins[0]]), out_shape=_hwc(shape),
                               kind=node.kind[:3], kernel=list(node.attrs["kernel"]), stride=list(node.attrs["stride"]),
                               padding=[t, b, left, r], scale=f32(inp[0]), zero_point=inp[1]))
        elif node.kind == "conv":
            out = _observe(values[node.name])
            node.inputs = ins
            layers.append(_conv(node, inp, out, shapes[ins[0]]))
        elif node.kind == "add":
            out = _observe(values[node.name])
            node.inputs = ins
            layers.append(_add(node, params[ins[0]], params[ins[1]], out, shape))
        elif node.kind == "linear":
            out = _observe(values[node.name])
            assert isinstance(node.module, nn.Linear)
            dense = _dense(node.name, node.module, inp, out, node.act, per_channel=weights == "per_channel")
            dense.inputs = ins
            layers.append(dense)
        elif node.kind == "clamp":
            out = inp  # exact as a table on the same quantization
            lo, hi = _clamp_bounds(node.module, inp[0], inp[1])  # type: ignore[arg-type]
            layers.append(Lut(name=node.name, function=node.module.kind, input_scale=f32(inp[0]),  # type: ignore[union-attr]
                              input_zero_point=inp[1], output_scale=f32(inp[0]), output_zero_point=inp[1],
                              table=[clamp(q, lo, hi) for q in range(INT8_MIN, INT8_MAX + 1)], inputs=ins))
        elif node.kind == "elementwise":
            mod = node.module
            assert isinstance(mod, Elementwise)
            if mod.function in LUT_OUTPUT:
                out = LUT_OUTPUT[mod.function]
                table = lut_table(mod.function, inp[0], inp[1], out[0], out[1])
            else:
                out = _observe(values[node.name])
                table = function_table(mod.fn, inp[0], inp[1], out[0], out[1])
            layers.append(Lut(name=node.name, function=mod.function, input_scale=f32(inp[0]), input_zero_point=inp[1],
                              output_scale=f32(out[0]), output_zero_point=out[1], table=table, inputs=ins))
        else:
            raise AssertionError(node.kind)
        params[node.name] = out
        shapes[node.name] = shape
    if not layers or real(g.nodes[-1].name) != layers[-1].name:
        raise QmcuError(f"{name}: the output is not computed by the last layer", "end the network with a Linear")
    hwc = _hwc(shapes["input"])
    model = IntModel(name=name, input_size=hwc[0] * hwc[1] * hwc[2], input_scale=f32(params["input"][0]),
                     input_zero_point=params["input"][1], layers=layers, provenance=dict(provenance),
                     input_shape=list(g.input_shape))
    validate(model)
    return model
