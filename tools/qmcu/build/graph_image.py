"""The state-object fields of a graph model's conv, depthwise, pointwise, pool and add layers, as the image
check (image_model.py) walks them: the kernels' params structs (kernels/*.hpp), member by member.

  Conv/Depthwise params: {const int16_t* weights; const int32_t* biases; ChannelRequant; int32_t input_zero_point}
  Pointwise params:      {const int16_t* weights; const int32_t* biases; ChannelRequant}
  ChannelRequant:        {const ChannelScale* scales; const Requantizer* exact; int32_t qmin, qmax} (one pointer null)
  Pool params:           {int32_t qmin, qmax}
  Add params:            12 x int32_t (TFLite's ADD constants and the clamp)
"""

from __future__ import annotations

import struct

from qmcu.build.image_model import Field, _i8, _i16, _i32
from qmcu.codegen import conv_layout as cl
from qmcu.codegen.graph_header import prepare_layer
from qmcu.quant.intmodel import Layer


def _requant(name: str, rq: cl.ChannelRequantTable) -> list[Field]:
    scales = b"".join(struct.pack("<iiiI", *row) for row in rq.scales) if rq.scales is not None else b""
    exact = _i32([v for row in rq.exact for v in row]) if rq.exact is not None else b""
    return [Field(f"{name} channel scales", scales, True), Field(f"{name} exact requantizers", exact, True),
            Field(f"{name} clamp", _i32([rq.qmin, rq.qmax]), False)]


def kernel_fields(lay: Layer) -> list[Field]:
    prep = prepare_layer(lay)
    assert prep is not None, lay.name
    name = lay.name
    if isinstance(prep, cl.PreparedPool):
        return [Field(f"{name} clamp", _i32([prep.qmin, prep.qmax]), False)]
    if isinstance(prep, cl.PreparedAdd):
        a = prep.params
        return [Field(f"{name} add constants", _i32([a.left_shift, a.input1_offset, a.input1_multiplier, a.input1_shift,
                                                     a.input2_offset, a.input2_multiplier, a.input2_shift,
                                                     a.output_multiplier, a.output_shift, a.output_offset, prep.qmin,
                                                     prep.qmax]), False)]
    weights = _i8(prep.weights) if getattr(prep, "weight_ctype", "int16_t") == "int8_t" else _i16(prep.weights)
    fields = [Field(f"{name} weights", weights, True), Field(f"{name} folded biases", _i32(prep.biases), True),
              *_requant(name, prep.requant)]
    if isinstance(prep, cl.PreparedConv2d | cl.PreparedDepthwise):
        fields.append(Field(f"{name} input zero point", _i32([prep.input_zero_point]), False))
    return fields
