"""The Python integer reference of the forward pass: numpy, int64 intermediates, no float.

It is the specification of the firmware's arithmetic; every target output is compared with it.
"""

from __future__ import annotations

import numpy as np

from qmcu.quant.intmodel import Dense, IntModel, Lut

_I32_MIN, _I32_MAX = np.int64(-(2**31)), np.int64(2**31 - 1)


def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    """Vectorised SaturatingRoundingDoublingHighMul (see fixedpoint.py for the scalar contract)."""
    ab = a * np.int64(b)
    total = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    q = np.where(total >= 0, total >> 31, -((-total) >> 31))
    return np.where((a == _I32_MIN) & (b == _I32_MIN), _I32_MAX, q)


def _rdbpot(x: np.ndarray, exponent: int) -> np.ndarray:
    mask = np.int64((1 << exponent) - 1)
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def requantize(acc: np.ndarray, multiplier: int, shift: int, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    left, right = max(shift, 0), max(-shift, 0)
    shifted = np.clip(acc.astype(np.int64) << left, _I32_MIN, _I32_MAX)
    scaled = _rdbpot(_srdhm(shifted, multiplier), right)
    return np.clip(scaled + zero_point, qmin, qmax)


def dense(x: np.ndarray, layer: Dense) -> np.ndarray:
    """x: int8 values [N, in]; returns int8 values [N, out] as int64."""
    w = np.asarray(layer.weights, dtype=np.int64).reshape(layer.out_features, layer.in_features)
    acc = (x.astype(np.int64) - layer.input_zero_point) @ w.T + np.asarray(layer.bias, dtype=np.int64)
    if layer.multipliers is not None and layer.shifts is not None:  # per-channel: row o with its own requantizer
        cols = [requantize(acc[:, o], m, s, layer.output_zero_point, layer.act_min, layer.act_max)
                for o, (m, s) in enumerate(zip(layer.multipliers, layer.shifts, strict=True))]
        return np.stack(cols, axis=1).reshape(acc.shape)
    return requantize(acc, layer.multiplier, layer.shift, layer.output_zero_point, layer.act_min, layer.act_max)


def lut(x: np.ndarray, layer: Lut) -> np.ndarray:
    return np.asarray(layer.table, dtype=np.int64)[x.astype(np.int64) + 128]


def forward_all(model: IntModel, inputs: np.ndarray) -> list[np.ndarray]:
    """Every layer's int8 output for a batch of int8 inputs [N, input_size]."""
    x = np.asarray(inputs, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != model.input_size:
        raise ValueError(f"inputs must be [N, {model.input_size}], got {x.shape}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError("inputs must be int8 values")
    if model.is_graph:
        from qmcu.quant.graph_reference import forward_all as forward_graph

        return forward_graph(model, x)
    outs = []
    for layer in model.layers:
        assert isinstance(layer, Dense | Lut)
        x = dense(x, layer) if isinstance(layer, Dense) else lut(x, layer)
        outs.append(x)
    return outs


def forward(model: IntModel, inputs: np.ndarray) -> np.ndarray:
    """The network's int8 output [N, output_size] (int64 dtype holding int8 values)."""
    return forward_all(model, inputs)[-1]


def quantize_array(x: np.ndarray, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """qmath.quantize_value on every element, vectorised with the same arithmetic: the float32 division
    x / scale, round half away from zero (exact: a float32 quotient plus 0.5 is exact in float64), the
    zero point, the clamp."""
    q = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
    q = np.clip(q, -2.0**40, 2.0**40)  # beyond int8 either way; keeps the int64 conversion defined
    rounded = np.sign(q) * np.floor(np.abs(q) + 0.5)
    return np.clip(rounded.astype(np.int64) + zero_point, qmin, qmax)


def quantize_rows(model: IntModel, floats: np.ndarray) -> np.ndarray:
    """The host-side input quantization (float32 division, lround, zero point, clamp) of every value."""
    floats = np.asarray(floats)
    q = quantize_array(floats, model.input_scale, model.input_zero_point).reshape(len(floats), -1)
    return target_order(model, q)


def target_order(model: IntModel, rows: np.ndarray) -> np.ndarray:
    """Rows in the order the target reads them: a graph model's (C, H, W) or (C, L) samples channels last."""
    if model.input_shape is None:
        return rows
    c = model.input_shape[0]
    return rows.reshape(len(rows), c, -1).transpose(0, 2, 1).reshape(len(rows), -1)


def predictions(model: IntModel, outputs: np.ndarray) -> np.ndarray:
    """One output: probability above 0.5; several: the first arg-max (what the firmware computes)."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] >= positive_min_q(model)).astype(np.int64)
    return outputs.argmax(axis=1).astype(np.int64)


def positive_min_q(model: IntModel) -> int:
    """Smallest int8 output whose probability (q - zp) * scale exceeds 0.5: pred = out >= this."""
    out = model.layers[-1]
    scale, zp = out.output_scale, out.output_zero_point
    for q in range(-128, 128):
        if (q - zp) * scale > 0.5:
            return q
    return 128
