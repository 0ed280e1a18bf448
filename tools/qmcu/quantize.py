"""Float XOR model + calibration ranges -> the integer model (weights, biases, requantizers, LUT)."""

from __future__ import annotations

import math

import numpy as np

from .calibrate import Ranges, activation_params
from .intmodel import Dense, IntModel, Lut, validate
from .qmath import (
    INT8_MAX,
    INT8_MIN,
    clamp,
    f32,
    lround,
    quantize_bias,
    quantize_weights,
    requant_multiplier,
    symmetric_weight_scale,
)
from .xor_model import XORNet

SIGMOID_OUT_SCALE = 1.0 / 256.0
SIGMOID_OUT_ZERO_POINT = -128


def sigmoid_lut(in_scale: float, in_zp: int, out_scale: float = SIGMOID_OUT_SCALE,
                out_zp: int = SIGMOID_OUT_ZERO_POINT) -> list[int]:
    """table[q + 128] = quantized sigmoid of dequantized q, in double from the float32 scales."""
    s_in, s_out = f32(in_scale), f32(out_scale)
    table = []
    for q in range(INT8_MIN, INT8_MAX + 1):
        x = (q - in_zp) * s_in
        y = 1.0 / (1.0 + math.exp(-x))
        table.append(clamp(lround(y / s_out) + out_zp, INT8_MIN, INT8_MAX))
    return table


def _dense(name: str, weight: np.ndarray, bias: np.ndarray, in_params: tuple[float, int],
           out_params: tuple[float, int], relu: bool) -> Dense:
    w_scale = f32(symmetric_weight_scale(weight))
    in_scale, in_zp = f32(in_params[0]), in_params[1]
    out_scale, out_zp = f32(out_params[0]), out_params[1]
    multiplier, shift = requant_multiplier(in_scale, w_scale, out_scale)
    return Dense(
        name=name, in_features=weight.shape[1], out_features=weight.shape[0],
        weights=quantize_weights(weight, w_scale), bias=quantize_bias(bias, in_scale, w_scale),
        weight_scale=w_scale, input_scale=in_scale, input_zero_point=in_zp,
        output_scale=out_scale, output_zero_point=out_zp, multiplier=multiplier, shift=shift,
        act_min=out_zp if relu else INT8_MIN, act_max=INT8_MAX, activation="relu" if relu else "none",
    )


def quantize_xor(model: XORNet, ranges: Ranges, name: str, provenance: dict[str, object]) -> IntModel:
    params = activation_params(ranges)
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    fc1 = _dense("fc1", sd["fc1.weight"], sd["fc1.bias"], params["input"], params["hidden"], relu=True)
    fc2 = _dense("fc2", sd["fc2.weight"], sd["fc2.bias"], params["hidden"], params["logit"], relu=False)
    logit_scale, logit_zp = f32(params["logit"][0]), params["logit"][1]
    sigmoid = Lut(name="sigmoid", function="sigmoid", input_scale=logit_scale, input_zero_point=logit_zp,
                  output_scale=SIGMOID_OUT_SCALE, output_zero_point=SIGMOID_OUT_ZERO_POINT,
                  table=sigmoid_lut(logit_scale, logit_zp))
    input_scale, input_zp = f32(params["input"][0]), params["input"][1]
    int_model = IntModel(name=name, input_size=2, input_scale=input_scale, input_zero_point=input_zp,
                         layers=[fc1, fc2, sigmoid], provenance=dict(provenance))
    validate(int_model)
    return int_model


def dequantize(q: int, scale: float, zp: int) -> float:
    return (q - zp) * f32(scale)


__all__ = ["quantize_xor", "sigmoid_lut", "dequantize", "lround"]
